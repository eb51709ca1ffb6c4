"""The parameter store's domain: SSM Parameter Store's data model, rules and error codes.

A parameter is a name plus up to 100 versions (1, 2, ...); each version has a type
(`String`, `StringList`, `SecureString`), a value of at most 4096 characters (the Standard
tier; Lamina has no Advanced tier), and up to 10 labels. Names are flat (`db-url`) or
hierarchical (`/app/prod/db-url`, at most 15 levels). The rules and the error codes are AWS's
(reference/lambda-compat.md §5.1), so that boto3 and the aws CLI see the same answers.

Error messages name the field, the bad value and the rule broken, but never a parameter's
*value*: it may be a secret. Nothing here does I/O; the store (`lamina.store.params`) and
the cipher (`lamina.services.secrets`) implement the two ports at the bottom.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, Protocol, TypeVar, cast, get_args

from lamina.core.errors import LaminaError
from lamina.core.models import Account

ParameterType = Literal["String", "StringList", "SecureString"]
PARAMETER_TYPES: tuple[ParameterType, ...] = get_args(ParameterType)
SECURE_STRING: ParameterType = "SecureString"
STANDARD_TIER = "Standard"
TIERS = ("Standard", "Advanced", "Intelligent-Tiering")
TEXT = "text"
DEFAULT_KEY_ID = "alias/aws/ssm"  # the account's AWS-managed key, as AWS defaults it

MAX_NAME = 2048
MAX_LEVELS = 15
MAX_VALUE = 4096  # characters, as the API's length constraint counts them
MAX_DESCRIPTION = 1024
MAX_ALLOWED_PATTERN = 1024
MAX_KEY_ID = 256
MAX_VERSIONS = 100  # versions kept per parameter; the oldest goes when one more arrives
MAX_LABELS_PER_VERSION = 10
MAX_LABELS_PER_CALL = 10
MAX_NAMES_PER_CALL = 10  # GetParameters, DeleteParameters
MAX_FILTER_VALUES = 50


# --- errors: AWS's codes; AWS's JSON protocol answers every caller fault with 400 ----------


class ParameterError(LaminaError):
    status = 400
    fault = "User"


class ValidationException(ParameterError):
    error_type = "ValidationException"


class SerializationException(ParameterError):
    error_type = "SerializationException"


class ParameterNotFound(ParameterError):
    error_type = "ParameterNotFound"


class ParameterAlreadyExists(ParameterError):
    error_type = "ParameterAlreadyExists"


class ParameterVersionNotFound(ParameterError):
    error_type = "ParameterVersionNotFound"


class ParameterPatternMismatchException(ParameterError):
    error_type = "ParameterPatternMismatchException"


class InvalidAllowedPatternException(ParameterError):
    error_type = "InvalidAllowedPatternException"


class HierarchyLevelLimitExceededException(ParameterError):
    error_type = "HierarchyLevelLimitExceededException"


class UnsupportedParameterType(ParameterError):
    error_type = "UnsupportedParameterType"


class ParameterMaxVersionLimitExceeded(ParameterError):
    error_type = "ParameterMaxVersionLimitExceeded"


class ParameterVersionLabelLimitExceeded(ParameterError):
    error_type = "ParameterVersionLabelLimitExceeded"


class InvalidFilterKey(ParameterError):
    error_type = "InvalidFilterKey"


class InvalidFilterOption(ParameterError):
    error_type = "InvalidFilterOption"


class InvalidFilterValue(ParameterError):
    error_type = "InvalidFilterValue"


class InvalidNextToken(ParameterError):
    error_type = "InvalidNextToken"


class UnknownOperationException(ParameterError):
    error_type = "UnknownOperationException"


class SealedValueError(Exception):
    """A sealed value does not open with this key and context (raised by a `Cipher`)."""


class SecretUnavailable(LaminaError):
    """A SecureString cannot be decrypted: the key file changed or the row was altered.
    A platform fault; the message names the parameter, never its value."""

    error_type = "InternalServerError"
    status = 500
    fault = "Service"


# --- the model -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParameterVersion:
    """One version of a parameter, as stored. A SecureString's `value` is sealed
    (encrypted); the others' is their UTF-8 text."""

    name: str
    version: int
    type: ParameterType
    value: bytes
    last_modified: float  # epoch seconds
    description: str = ""
    key_id: str | None = None  # SecureString only
    allowed_pattern: str | None = None
    labels: tuple[str, ...] = ()
    tier: str = STANDARD_TIER
    data_type: str = TEXT


@dataclass(frozen=True, slots=True)
class Parameter:
    """A parameter version as a caller sees it. `value` is the text, or for a SecureString
    read without decryption the sealed value in base64 (where AWS gives the KMS ciphertext)."""

    name: str
    version: int
    type: ParameterType
    value: str
    last_modified: float
    description: str = ""
    key_id: str | None = None
    allowed_pattern: str | None = None
    labels: tuple[str, ...] = ()
    tier: str = STANDARD_TIER
    data_type: str = TEXT
    selector: str | None = None  # ":3" or ":prod" when the caller asked for one

    @property
    def values(self) -> list[str]:
        """A StringList's items (AWS joins them with commas); other types' value alone."""
        return self.value.split(",") if self.type == "StringList" else [self.value]


@dataclass(frozen=True, slots=True)
class Selector:
    """`name:3` (a version) or `name:prod` (a label) in a parameter reference."""

    version: int | None = None
    label: str | None = None

    def __str__(self) -> str:
        return f":{self.version}" if self.version is not None else f":{self.label}"


@dataclass(frozen=True, slots=True)
class PutParameterRequest:
    """PutParameter's inputs. `None` means "not given": an overwrite keeps the old setting."""

    name: str
    value: str
    type: str | None = None
    overwrite: bool = False
    description: str | None = None
    key_id: str | None = None
    allowed_pattern: str | None = None
    tier: str | None = None
    data_type: str | None = None
    tags: tuple[tuple[str, str], ...] = ()  # accepted, not stored (no tag operations yet)
    policies: str | None = None


@dataclass(frozen=True, slots=True)
class ParameterFilter:
    """One `ParameterStringFilter`: values are alternatives; filters all have to match."""

    key: str
    values: tuple[str, ...]
    option: str = ""  # "": the key's default (OneLevel for Path, else Equals)


T = TypeVar("T")
P = TypeVar("P", str, int)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_token: str | None = None


def parameter_arn(account: Account, name: str) -> str:
    return f"arn:aws:ssm:{account.region}:{account.account_id}:parameter/{name.lstrip('/')}"


# --- names, references and paths ----------------------------------------------------------

_NAME_CHARS = re.compile(r"[a-zA-Z0-9_./-]+")
_RESERVED = ("aws", "ssm")
_ARN = re.compile(r"arn:[^:]+:ssm:[^:]*:[^:]*:parameter/(?P<rest>.+)")
_VERSION = re.compile(r"[0-9]{1,18}")  # fits SQLite's 64-bit integers


def parameter_name(name: str) -> str:
    """A name to create, trimmed as AWS trims it; raises unless it may be created."""
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise _invalid("Name", name, f"must be 1-{MAX_NAME} characters")
    if not _NAME_CHARS.fullmatch(name):
        raise _invalid(
            "Name", name, "may contain only letters, digits, '_', '.', '-' and '/' (no spaces)"
        )
    if "/" in name and not name.startswith("/"):
        raise _invalid("Name", name, "a hierarchical name must begin with '/'")
    levels = name.lstrip("/").split("/")
    if "" in levels:
        raise _invalid("Name", name, "a hierarchy level must not be empty ('//' or a final '/')")
    if levels[0].lower().startswith(_RESERVED):
        raise _invalid("Name", name, "must not begin with 'aws' or 'ssm' (in any case): reserved")
    if len(levels) > MAX_LEVELS:
        raise HierarchyLevelLimitExceededException(
            f"Name = {name!r}: has {len(levels)} levels; "
            f"a parameter name hierarchy can have at most {MAX_LEVELS}"
        )
    return name


def parse_reference(reference: str) -> tuple[str, Selector | None]:
    """`name`, `name:3`, `name:label` or the parameter's ARN (with either) → (name, selector).

    Names are not validated: reading a name that cannot exist is simply not finding it.
    """
    text = reference.strip()
    arn = _ARN.fullmatch(text)
    if arn is not None:
        rest = arn["rest"]
        # The ARN drops a hierarchical name's leading '/'; a flat name has no '/' at all.
        text = f"/{rest}" if "/" in rest.split(":", 1)[0] else rest
    name, colon, selector = text.partition(":")
    if not colon:
        return name, None
    if _VERSION.fullmatch(selector):
        return name, Selector(version=int(selector))
    if not selector or ":" in selector:
        raise _invalid("Name", reference, "a selector is ':<version>' or ':<label>' after a name")
    return name, Selector(label=selector)


def parameter_path(path: str) -> str:
    """GetParametersByPath's `Path`, without its final '/' (except for the root, '/')."""
    if not path.startswith("/") or not 1 <= len(path) <= MAX_NAME:
        raise _invalid("Path", path, f"must begin with '/' and be 1-{MAX_NAME} characters")
    if not _NAME_CHARS.fullmatch(path) or "//" in path:
        raise _invalid("Path", path, "must be '/'-separated levels of letters, digits, '_.-'")
    return path.rstrip("/") or "/"


def under(path: str) -> str:
    """The prefix every name below `path` starts with."""
    return path.rstrip("/") + "/"


# --- putting a version -------------------------------------------------------------------


def next_version(
    request: PutParameterRequest, current: ParameterVersion | None, now: float
) -> ParameterVersion:
    """The version PutParameter creates on top of `current` (None: a new parameter).

    The value is returned as plain UTF-8; sealing a SecureString is the caller's job. Unset
    settings of an overwrite are kept from `current`, as AWS keeps them.
    """
    name = parameter_name(request.name)
    _check_put(request)
    if current is not None and not request.overwrite:
        raise ParameterAlreadyExists(
            f"Parameter {name} already exists (version {current.version}): "
            "set Overwrite to true to replace its value"
        )
    # _check_put has refused any other type.
    kind = cast("ParameterType | None", request.type) or (current and current.type)
    if not kind:
        raise _invalid("Type", None, "is required when creating a parameter")
    if request.key_id is not None and kind != SECURE_STRING:
        raise _invalid("KeyId", request.key_id, "is only for SecureString parameters")
    key_id = None
    if kind == SECURE_STRING:
        key_id = request.key_id or (current and current.key_id) or DEFAULT_KEY_ID
    description = request.description
    if description is None:
        description = current.description if current is not None else ""
    pattern = request.allowed_pattern
    if pattern is None and current is not None:
        pattern = current.allowed_pattern
    if pattern and not re.fullmatch(pattern, request.value):
        raise ParameterPatternMismatchException(
            f"Value of {name} does not match its AllowedPattern {pattern!r}"
        )
    return ParameterVersion(
        name=name,
        version=current.version + 1 if current is not None else 1,
        type=kind,
        value=request.value.encode(),
        last_modified=now,
        description=description,
        key_id=key_id,
        allowed_pattern=pattern or None,  # an empty pattern given on overwrite removes it
        tier=STANDARD_TIER,  # Intelligent-Tiering picks Standard for values that fit it
        data_type=TEXT,
    )


def _check_put(request: PutParameterRequest) -> None:
    """Checks that need no stored state, in the order AWS reports them."""
    if request.type is not None and request.type not in PARAMETER_TYPES:
        raise UnsupportedParameterType(
            f"Type = {request.type!r}: must be String, StringList or SecureString"
        )
    if not 1 <= len(request.value) <= MAX_VALUE:
        raise ValidationException(
            f"Value of {request.name.strip()}: {len(request.value)} characters; a Standard-tier "
            f"value is 1-{MAX_VALUE} characters (Lamina has no Advanced tier)"
        )
    if request.description is not None and len(request.description) > MAX_DESCRIPTION:
        raise _invalid(
            "Description", request.description[:40] + "...", f"is over {MAX_DESCRIPTION} characters"
        )
    if request.key_id is not None and not 1 <= len(request.key_id) <= MAX_KEY_ID:
        raise _invalid("KeyId", request.key_id, f"must be 1-{MAX_KEY_ID} characters")
    if request.allowed_pattern is not None:
        allowed_pattern(request.allowed_pattern)
    if request.tier is not None and request.tier not in TIERS:
        raise _invalid("Tier", request.tier, "must be Standard, Advanced or Intelligent-Tiering")
    if request.tier == "Advanced":
        raise _invalid("Tier", request.tier, "Lamina keeps Standard-tier parameters only")
    if request.data_type is not None and request.data_type != TEXT:
        raise _invalid(
            "DataType", request.data_type, "must be 'text' (Lamina has no aws:ec2:image checks)"
        )
    if request.policies:
        raise _invalid(
            "Policies",
            request.policies,
            "parameter policies need the Advanced tier, which Lamina does not have",
        )
    if request.tags and request.overwrite:
        raise ValidationException(
            "Tags cannot be given with Overwrite: tag an existing parameter with "
            "AddTagsToResource instead"
        )


def allowed_pattern(pattern: str) -> re.Pattern[str]:
    # AWS compiles Java regular expressions; Python's agree on everything that is common in
    # AllowedPattern (classes, anchors, repetition). A pattern matches the whole value.
    if len(pattern) > MAX_ALLOWED_PATTERN:
        raise InvalidAllowedPatternException(
            f"AllowedPattern is over {MAX_ALLOWED_PATTERN} characters"
        )
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InvalidAllowedPatternException(
            f"AllowedPattern = {pattern!r}: not a regular expression ({exc})"
        ) from None


# --- labels ------------------------------------------------------------------------------

_LABEL = re.compile(r"[a-zA-Z0-9_.-]{1,100}")


def is_valid_label(label: str) -> bool:
    """AWS's label rules; LabelParameterVersion returns the others as `InvalidLabels`."""
    return (
        _LABEL.fullmatch(label) is not None
        and not label[0].isdigit()
        and not label.lower().startswith(_RESERVED)
    )


def attach_labels(
    name: str, versions: Mapping[int, Sequence[str]], target: int, labels: Sequence[str]
) -> dict[int, tuple[str, ...]]:
    """Versions → labels after `labels` move to version `target` (a label names one version
    of a parameter at a time, so it leaves the version that had it)."""
    if target not in versions:
        raise ParameterVersionNotFound(
            f"Version {target} of parameter {name} does not exist (or was dropped: "
            f"only the {MAX_VERSIONS} newest versions are kept)"
        )
    moving = set(labels)
    result = {v: tuple(x for x in have if x not in moving) for v, have in versions.items()}
    result[target] = tuple(dict.fromkeys([*versions[target], *labels]))
    if len(result[target]) > MAX_LABELS_PER_VERSION:
        raise ParameterVersionLabelLimitExceeded(
            f"Version {target} of parameter {name} would have {len(result[target])} labels; "
            f"a version can have at most {MAX_LABELS_PER_VERSION}"
        )
    return result


# --- filters -----------------------------------------------------------------------------

BY_PATH_FILTER_KEYS = ("Type", "KeyId", "Label")
DESCRIBE_FILTER_KEYS = ("Name", "Type", "KeyId", "Path", "Label", "Tier", "DataType")
_OPTIONS: dict[str, tuple[str, ...]] = {
    "Name": ("Equals", "BeginsWith", "Contains"),
    "Path": ("OneLevel", "Recursive"),  # the first is the default
}


def check_filters(
    filters: Sequence[ParameterFilter], allowed: Sequence[str]
) -> tuple[ParameterFilter, ...]:
    """Filters with their default options filled in; raises on keys, options and values
    `allowed` (the operation's keys) does not accept."""
    checked = []
    for f in filters:
        if f.key not in allowed:
            why = " (Lamina stores no tags)" if f.key.startswith("tag:") else ""
            raise InvalidFilterKey(
                f"The filter key {f.key!r} is not valid here{why}. "
                f"Valid filter keys include: [{', '.join(allowed)}]"
            )
        options = _OPTIONS.get(f.key, ("Equals",))
        option = f.option or options[0]
        if option not in options:
            raise InvalidFilterOption(
                f"The filter option {option!r} is not valid for key {f.key}. "
                f"Valid options include: [{', '.join(options)}]"
            )
        if not 1 <= len(f.values) <= MAX_FILTER_VALUES or not all(
            1 <= len(v) <= 1024 for v in f.values
        ):
            raise InvalidFilterValue(
                f"The filter {f.key} needs 1-{MAX_FILTER_VALUES} values of 1-1024 characters"
            )
        _check_values(f.key, f.values)
        checked.append(ParameterFilter(f.key, tuple(f.values), option))
    return tuple(checked)


def _check_values(key: str, values: Sequence[str]) -> None:
    known: dict[str, Sequence[str]] = {"Type": PARAMETER_TYPES, "Tier": TIERS}
    for value in values:
        if key in known and value not in known[key]:
            raise InvalidFilterValue(
                f"The filter value {value!r} is not valid for key {key}. "
                f"Valid values include: [{', '.join(known[key])}]"
            )
        if key == "Path" and not value.startswith("/"):
            raise InvalidFilterValue(f"The filter value {value!r} for key Path must begin with '/'")


# --- pagination --------------------------------------------------------------------------


def encode_token(kind: str, position: str | int) -> str:
    """An opaque NextToken: where the next page starts, and for which listing."""
    raw = json.dumps({"k": kind, "p": position}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_token(kind: str, token: str, position: type[P]) -> P:
    """Where the page `token` asks for starts; raises unless `kind`'s listing gave it."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError):
        data = None
    found = data.get("p") if isinstance(data, dict) and data.get("k") == kind else None
    if not isinstance(found, position) or isinstance(found, bool):
        raise InvalidNextToken(f"NextToken = {token[:60]!r}: not a token this operation gave")
    return found


def max_results(value: int | None, field: str, limit: int, default: int) -> int:
    if value is None:
        return default
    if not 1 <= value <= limit:
        raise ValidationException(
            f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy "
            f"constraint: Member must have value between 1 and {limit}"
        )
    return value


def _invalid(field: str, value: object, rule: str) -> ValidationException:
    return ValidationException(f"{field} = {value!r}: {rule}")


# --- ports -------------------------------------------------------------------------------

Build = Callable[[ParameterVersion | None], ParameterVersion]


class ParameterRepository(Protocol):
    """Durable parameters (`lamina.store.params`). Every method is one transaction."""

    def put(self, name: str, build: Build) -> ParameterVersion:
        """Store `build(latest version or None)` as the newest version, dropping the oldest
        beyond `MAX_VERSIONS` (`ParameterMaxVersionLimitExceeded` if it has a label)."""
        ...

    def get(self, name: str, selector: Selector | None = None) -> ParameterVersion | None: ...

    def get_many(
        self, references: Sequence[tuple[str, Selector | None]]
    ) -> list[ParameterVersion | None]: ...

    def by_path(
        self,
        path: str,
        *,
        recursive: bool,
        filters: Sequence[ParameterFilter],
        after: str | None,
        limit: int,
    ) -> list[ParameterVersion]:
        """Latest versions below `path` (or with a Label filter, the newest labelled one),
        ordered by name, names after `after` only."""
        ...

    def describe(
        self, filters: Sequence[ParameterFilter], *, after: str | None, limit: int
    ) -> list[ParameterVersion]: ...

    def history(self, name: str) -> list[ParameterVersion]: ...  # oldest first

    def label(self, name: str, version: int | None, labels: Sequence[str]) -> int | None:
        """Attach labels (see `attach_labels`) to `version` (None: the latest); returns that
        version, or None if there is no such parameter."""
        ...

    def delete(self, name: str) -> bool: ...

    def delete_many(self, names: Sequence[str]) -> list[str]: ...  # those that existed


class Cipher(Protocol):
    """Authenticated encryption of SecureString values. `context` is bound to the sealed
    value: opening with another context fails, so a value cannot move to another parameter."""

    def seal(self, plaintext: bytes, context: bytes) -> bytes: ...

    def unseal(self, sealed: bytes, context: bytes) -> bytes: ...
