"""`AesGcmCipher`: SecureString values encrypted at rest with a key file in Lamina's home.

Why AES-256-GCM (`cryptography`'s `AESGCM`) rather than Fernet: GCM authenticates
*associated data*, so each sealed value is bound to its parameter's name and version and a
ciphertext copied onto another parameter's row does not decrypt; Fernet (AES-128-CBC plus
HMAC) has no associated data, and its tokens carry a timestamp we have no use for.

A sealed value is `FORMAT (1 byte) | nonce (12 random bytes) | ciphertext + 16-byte tag`.
The format byte leaves room for key rotation. Random 96-bit nonces are safe for far more
encryptions (2^32 per key) than a parameter store makes.

The key is 32 random bytes, base64 on one line of `<home>/keys/parameters.key` (0600, in a
0700 directory), created the first time a SecureString is written or read. Back it up with
the database: without it, SecureStrings cannot be read. The key is never logged.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
import stat
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lamina.core.errors import ServiceException
from lamina.core.params import SealedValueError

log = logging.getLogger(__name__)

KEY_FILE = Path("keys") / "parameters.key"
FORMAT = b"\x01"
NONCE_BYTES = 12
KEY_BYTES = 32


class KeyFileError(ServiceException):
    """The key file exists but is not a key: refusing it is better than making a new one,
    which would leave every stored SecureString unreadable."""


class AesGcmCipher:
    def __init__(self, key_path: Path) -> None:
        self.key_path = key_path
        self._lock = threading.Lock()
        self._aead: AESGCM | None = None

    @classmethod
    def for_home(cls, home: Path) -> AesGcmCipher:
        return cls(home / KEY_FILE)

    def __repr__(self) -> str:
        state = "loaded" if self._aead is not None else "not loaded"
        return f"<AesGcmCipher {self.key_path} {state}>"

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return FORMAT + nonce + self._key().encrypt(nonce, plaintext, context)

    def unseal(self, sealed: bytes, context: bytes) -> bytes:
        if sealed[:1] != FORMAT or len(sealed) < 1 + NONCE_BYTES + 16:
            raise SealedValueError("not a value sealed by this Lamina")
        nonce, ciphertext = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        try:
            return self._key().decrypt(nonce, ciphertext, context)
        except InvalidTag:
            raise SealedValueError("wrong key, or the value or its context was altered") from None

    def _key(self) -> AESGCM:
        # Requests run on worker threads; the first ones must agree on one key.
        with self._lock:
            if self._aead is None:
                self._aead = AESGCM(_load_or_create(self.key_path))
            return self._aead


def _load_or_create(path: Path) -> bytes:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _restrict(path.parent, 0o700)
    if not path.exists():
        _create(path)
    _restrict(path, 0o600)
    try:
        key = base64.b64decode(path.read_bytes().strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"{path} is not a key file: expected {KEY_BYTES} bytes in base64")
    return key


def _create(path: Path) -> None:
    # Written under a temporary name and linked into place: a crash never leaves a
    # half-written key, and if another process won the race its key is the one kept.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(base64.b64encode(secrets.token_bytes(KEY_BYTES)) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return
        _fsync_dir(path.parent)
        log.info("created the SecureString key file %s", path)
    finally:
        temporary.unlink(missing_ok=True)


def _restrict(path: Path, mode: int) -> None:
    current = stat.S_IMODE(path.stat().st_mode)
    if current & ~mode:
        os.chmod(path, mode)
        log.warning("%s was mode %o; restricted it to %o", path, current, mode)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
