"""The key file and AES-GCM sealing of SecureString values."""

from __future__ import annotations

import base64
import logging
import os
import stat
from pathlib import Path

import pytest

from lamina.core.params import SealedValueError
from lamina.services.secrets import AesGcmCipher, KeyFileError


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def cipher(tmp_path: Path) -> AesGcmCipher:
    return AesGcmCipher.for_home(tmp_path)


def test_the_key_file_is_made_on_first_use_owner_only(
    cipher: AesGcmCipher, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_file = tmp_path / "keys" / "parameters.key"
    assert cipher.key_path == key_file
    assert not key_file.exists()

    with caplog.at_level(logging.DEBUG):
        cipher.seal(b"x", b"ctx")

    assert mode(key_file.parent) == 0o700
    assert mode(key_file) == 0o600
    key = key_file.read_bytes()
    assert len(base64.b64decode(key.strip(), validate=True)) == 32
    assert key.strip().decode() not in caplog.text  # never logged
    assert [p.name for p in key_file.parent.iterdir()] == ["parameters.key"]  # no leftovers


def test_round_trip_and_the_same_key_next_time(cipher: AesGcmCipher, tmp_path: Path) -> None:
    sealed = cipher.seal(b"hunter2", b"/app/token\x001")
    assert b"hunter2" not in sealed
    assert AesGcmCipher.for_home(tmp_path).unseal(sealed, b"/app/token\x001") == b"hunter2"


def test_each_seal_uses_a_fresh_nonce(cipher: AesGcmCipher) -> None:
    assert cipher.seal(b"same", b"c") != cipher.seal(b"same", b"c")


def test_a_sealed_value_opens_only_in_its_context(cipher: AesGcmCipher) -> None:
    sealed = cipher.seal(b"hunter2", b"/a\x001")
    with pytest.raises(SealedValueError):
        cipher.unseal(sealed, b"/b\x001")


@pytest.mark.parametrize("damage", ["flip", "truncate", "format"])
def test_damaged_values_do_not_open(cipher: AesGcmCipher, damage: str) -> None:
    sealed = bytearray(cipher.seal(b"hunter2", b"c"))
    if damage == "flip":
        sealed[-1] ^= 1
    elif damage == "truncate":
        del sealed[10:]
    else:
        sealed[0] = 9
    with pytest.raises(SealedValueError):
        cipher.unseal(bytes(sealed), b"c")


def test_another_key_does_not_open_values(cipher: AesGcmCipher, tmp_path: Path) -> None:
    sealed = cipher.seal(b"hunter2", b"c")
    with pytest.raises(SealedValueError):
        AesGcmCipher.for_home(tmp_path / "other").unseal(sealed, b"c")


def test_a_file_that_is_not_a_key_is_refused_not_replaced(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "parameters.key"
    key_file.parent.mkdir(mode=0o700)
    key_file.write_bytes(b"not a key\n")
    key_file.chmod(0o600)
    with pytest.raises(KeyFileError, match=r"parameters.key is not a key file"):
        AesGcmCipher(key_file).seal(b"x", b"c")
    assert key_file.read_bytes() == b"not a key\n"


def test_loose_permissions_are_tightened(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    AesGcmCipher.for_home(tmp_path).seal(b"x", b"c")
    keys = tmp_path / "keys"
    os.chmod(keys, 0o755)
    os.chmod(keys / "parameters.key", 0o644)

    AesGcmCipher.for_home(tmp_path).seal(b"x", b"c")

    assert (mode(keys), mode(keys / "parameters.key")) == (0o700, 0o600)
    assert "restricted it to 600" in caplog.text


def test_repr_shows_the_path_not_the_key(cipher: AesGcmCipher) -> None:
    cipher.seal(b"x", b"c")
    key = cipher.key_path.read_text().strip()
    assert key not in repr(cipher)
    assert repr(cipher).endswith("parameters.key loaded>")
