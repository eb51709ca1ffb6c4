"""Messages of the queue service: their model, SQS's rules for them, their MD5 digests and
receipt handles.

MD5s are computed exactly as SQS computes them, because SDKs may check them:
`MD5OfMessageBody` is the hex MD5 of the body's UTF-8 bytes; `MD5OfMessageAttributes` is the
hex MD5 of the attributes sorted by name, each encoded as its name, its data type, one
transport byte (1 for String/Number, 2 for Binary) and its value, every variable-length
part preceded by its length as a 4-byte big-endian integer.

A receipt handle names the queue, the message and the receive it came from; a newer receive
makes older handles stale (a delete with one succeeds without deleting, as on SQS).
Nothing here does I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

from lamina.core.queues import (
    MAX_DELAY,
    InvalidMessageContents,
    InvalidParameterValue,
    MissingParameter,
    QueueSettings,
    ReceiptHandleIsInvalid,
)

MAX_ATTRIBUTES = 10
MAX_ATTRIBUTE_NAME = 256
MAX_DATA_TYPE = 256
MAX_DEDUP_ID = 128  # also MessageGroupId
ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
DATA_TYPE = re.compile(r"(String|Number|Binary)(\.[A-Za-z0-9_.-]*)?")
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
# MessageGroupId and MessageDeduplicationId: letters, digits and punctuation.
TOKEN = re.compile(r"[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}")
# The characters SQS accepts in a body or a String value (XML 1.0's Char production).
_FORBIDDEN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
SYSTEM_ATTRIBUTES_FOR_SENDS = frozenset({"AWSTraceHeader"})


@dataclass(frozen=True, slots=True)
class MessageAttribute:
    data_type: str  # String, Number or Binary, optionally with a `.custom` suffix
    string_value: str | None = None
    binary_value: bytes | None = None

    @property
    def is_binary(self) -> bool:
        return self.data_type.startswith("Binary")

    @property
    def value_bytes(self) -> bytes:
        if self.is_binary:
            return self.binary_value or b""
        return (self.string_value or "").encode()


Attributes = Mapping[str, MessageAttribute]


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message a sender asks to enqueue (SendMessage, an entry of SendMessageBatch)."""

    body: str
    attributes: dict[str, MessageAttribute] = field(default_factory=dict)
    system_attributes: dict[str, MessageAttribute] = field(default_factory=dict)
    delay: int | None = None  # None: the queue's DelaySeconds
    group_id: str | None = None
    dedup_id: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """A message in a queue, as the store keeps it."""

    queue: str
    id: str
    seq: int  # enqueue order within the store; a FIFO message's SequenceNumber
    body: str
    sent_at: float  # epoch seconds
    visible_at: float  # epoch seconds: receivable from then on
    attributes: dict[str, MessageAttribute] = field(default_factory=dict)
    # SenderId, AWSTraceHeader, DeadLetterQueueSourceArn
    system: dict[str, str] = field(default_factory=dict)
    receive_count: int = 0
    first_receive_at: float | None = None
    receipt: str | None = None  # token of the newest receive
    group_id: str | None = None
    dedup_id: str | None = None

    @property
    def receipt_handle(self) -> str:
        return receipt_handle(self.queue, self.id, self.receipt or "")

    @property
    def sequence_number(self) -> str:
        # SQS's are 20-digit decimal strings that only grow; so are these.
        return f"{self.seq + 10**19:020d}"


# --- digests ---------------------------------------------------------------------------------


def md5_of_body(body: str) -> str:
    return hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()


def md5_of_attributes(attributes: Attributes) -> str | None:
    """SQS's MD5OfMessageAttributes (and MD5OfMessageSystemAttributes); None when empty."""
    if not attributes:
        return None
    digest = hashlib.md5(usedforsecurity=False)
    for name in sorted(attributes):
        attribute = attributes[name]
        digest.update(_sized(name.encode()))
        digest.update(_sized(attribute.data_type.encode()))
        digest.update(b"\x02" if attribute.is_binary else b"\x01")
        digest.update(_sized(attribute.value_bytes))
    return digest.hexdigest()


def _sized(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def content_dedup_id(body: str) -> str:
    """ContentBasedDeduplication: the SHA-256 of the body (not its attributes)."""
    return hashlib.sha256(body.encode()).hexdigest()


# --- rules -----------------------------------------------------------------------------------


def message_size(message: NewMessage) -> int:
    """What counts against MaximumMessageSize: the body plus each attribute's name, type and
    value, in bytes."""
    size = len(message.body.encode())
    for name, attribute in message.attributes.items():
        size += len(name.encode()) + len(attribute.data_type.encode())
        size += len(attribute.value_bytes)
    return size


def check_message(message: NewMessage, settings: QueueSettings) -> None:
    """Raise the error SQS answers a message it refuses with."""
    if message.body == "":
        raise MissingParameter("The request must contain the parameter MessageBody.")
    bad = _FORBIDDEN.search(message.body)
    if bad is not None:
        raise InvalidMessageContents(
            f"Invalid binary character '#x{ord(bad.group()):X}' was found in the message "
            "body, the set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | "
            "#xE000 to #xFFFD | #x10000 to #x10FFFF"
        )
    size = message_size(message)
    if size > settings.maximum_message_size:
        raise InvalidParameterValue(
            "One or more parameters are invalid. Reason: Message must be shorter than "
            f"{settings.maximum_message_size} bytes (this one is {size} bytes)."
        )
    check_attributes(message.attributes)
    for name in message.system_attributes:
        if name not in SYSTEM_ATTRIBUTES_FOR_SENDS:
            raise InvalidParameterValue(
                f"Message system attribute name '{name}' is invalid: "
                "only AWSTraceHeader can be sent"
            )
    check_attributes(message.system_attributes, system=True)
    _check_routing(message, settings)


def check_attributes(attributes: Attributes, *, system: bool = False) -> None:
    kind = "system" if system else "user"
    if len(attributes) > MAX_ATTRIBUTES:
        raise InvalidParameterValue(
            f"Number of message attributes [{len(attributes)}] exceeds the allowed maximum "
            f"[{MAX_ATTRIBUTES}]."
        )
    for name, attribute in attributes.items():
        lowered = name.lower()
        if (
            not ATTRIBUTE_NAME.fullmatch(name)
            or len(name) > MAX_ATTRIBUTE_NAME
            or name.startswith(".")
            or name.endswith(".")
            or ".." in name
            or (not system and lowered.startswith(("aws.", "amazon.")))
        ):
            raise InvalidParameterValue(
                f"Message ({kind}) attribute name '{name}' is invalid: it must be 1 to 256 "
                "characters of A-Z a-z 0-9 _ - ., must not start or end with '.' or contain "
                "'..', and must not start with 'AWS.' or 'Amazon.'"
            )
        data_type = attribute.data_type
        if not DATA_TYPE.fullmatch(data_type) or len(data_type) > MAX_DATA_TYPE:
            raise InvalidParameterValue(
                f"The type of message ({kind}) attribute '{name}' is invalid: {data_type!r}; "
                "expected String, Number or Binary, optionally followed by .<custom-type>"
            )
        if attribute.is_binary:
            if not attribute.binary_value:
                raise InvalidParameterValue(
                    f"Message ({kind}) attribute '{name}' must contain a non-empty value of "
                    f"type '{data_type}'."
                )
            continue
        value = attribute.string_value
        if not value:
            raise InvalidParameterValue(
                f"Message ({kind}) attribute '{name}' must contain a non-empty value of type "
                f"'{data_type}'."
            )
        if data_type.startswith("Number") and not is_number(value):
            raise InvalidParameterValue(
                f"Message ({kind}) attribute '{name}' = {value!r} is not a valid Number: "
                "a decimal of at most 38 significant digits, from -10^128 to 10^126"
            )
        if _FORBIDDEN.search(value):
            raise InvalidMessageContents(
                f"Message ({kind}) attribute '{name}' contains characters SQS does not allow"
            )


def is_number(value: str) -> bool:
    """SQS's Number: at most 38 significant digits, from -10^128 to 10^126."""
    if not NUMBER.fullmatch(value):
        return False
    digits = re.sub(r"[eE].*$", "", value).lstrip("+-").replace(".", "").lstrip("0")
    if len(digits.rstrip("0")) > 38:
        return False
    try:
        number = float(value)
    except ValueError:
        return False
    return -1e128 <= number <= 1e126


def _check_routing(message: NewMessage, settings: QueueSettings) -> None:
    """The FIFO parameters: required on a FIFO queue, refused on a standard one."""
    if message.delay is not None and not 0 <= message.delay <= MAX_DELAY:
        raise InvalidParameterValue(
            f"Value {message.delay} for parameter DelaySeconds is invalid. "
            f"Reason: must be between 0 and {MAX_DELAY}, if provided."
        )
    for label, token in (
        ("MessageGroupId", message.group_id),
        ("MessageDeduplicationId", message.dedup_id),
    ):
        if token is not None and not TOKEN.fullmatch(token):
            raise InvalidParameterValue(
                f"Value {token!r} for parameter {label} is invalid. Reason: must be 1 to "
                f"{MAX_DEDUP_ID} letters, digits and punctuation characters."
            )
    if not settings.fifo:
        if message.dedup_id is not None:
            raise InvalidParameterValue(
                "The request include parameter MessageDeduplicationId that is not valid for "
                "this queue type (it applies to FIFO queues only)."
            )
        return
    if message.group_id is None:
        raise MissingParameter("The request must contain the parameter MessageGroupId.")
    if message.delay is not None and message.delay != 0:
        raise InvalidParameterValue(
            f"Value {message.delay} for parameter DelaySeconds is invalid. Reason: The "
            "request include parameter that is not valid for this queue type (a FIFO queue "
            "delays by its DelaySeconds attribute only)."
        )
    if message.dedup_id is None and not settings.content_based_deduplication:
        raise InvalidParameterValue(
            "The queue should either have ContentBasedDeduplication enabled or "
            "MessageDeduplicationId provided explicitly"
        )


# --- receipt handles -------------------------------------------------------------------------


def receipt_handle(queue: str, message_id: str, token: str) -> str:
    raw = f"{queue}\n{message_id}\n{token}".encode()
    return base64.urlsafe_b64encode(raw).decode()


def parse_receipt_handle(handle: str) -> tuple[str, str, str]:
    """(queue, message id, receive token) of a handle this service gave out."""
    try:
        parts = base64.urlsafe_b64decode(handle.encode()).decode().split("\n")
    except (binascii.Error, UnicodeError, ValueError):
        parts = []
    if len(parts) != 3 or not all(parts):
        raise ReceiptHandleIsInvalid(
            f'The input receipt handle "{handle}" is not a valid receipt handle.'
        )
    return parts[0], parts[1], parts[2]
