from __future__ import annotations

import hashlib
import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from lamina.core.errors import InvalidZipFileException
from lamina.store import blobs
from lamina.store.blobs import CodeStore

Entry = tuple[str, bytes | str, int]  # name, content (or link target), unix mode


def _zip(*entries: Entry, unix: bool = True) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content, mode in entries:
            info = zipfile.ZipInfo(name)
            info.create_system = 3 if unix else 0
            info.external_attr = mode << 16
            if stat.S_ISDIR(mode):
                info.external_attr |= 0x10  # MS-DOS directory flag
            zf.writestr(info, content)
    return buf.getvalue()


def _file(name: str, content: bytes | str = b"", perms: int = 0o644) -> Entry:
    return (name, content, stat.S_IFREG | perms)


def _link(name: str, target: str) -> Entry:
    return (name, target, stat.S_IFLNK | 0o777)


def _tree(root: Path) -> dict[str, str]:
    """Every path below root: file contents, '-> target' for links, '/' for directories."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            path = Path(dirpath, name)
            key = str(path.relative_to(root))
            if path.is_symlink():
                found[key] = f"-> {os.readlink(path)}"
            elif path.is_dir():
                found[key] = "/"
            else:
                found[key] = path.read_text()
    return found


def _leftovers(store: CodeStore) -> list[Path]:
    return [p for p in store.root.glob("*/.*")]


@pytest.fixture
def store(tmp_path: Path) -> CodeStore:
    return CodeStore(tmp_path / "code-store")


# put


def test_put_stores_the_zip_and_unpacks_it(store: CodeStore) -> None:
    data = _zip(_file("app.py", "def handler(e, c): pass\n"), _file("pkg/mod.py", "x = 1\n"))

    sha, size = store.put(data)

    assert (sha, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert store.has(sha)
    assert store.zip_path(sha).read_bytes() == data
    assert _tree(store.code_dir(sha)) == {
        "app.py": "def handler(e, c): pass\n",
        "pkg": "/",
        "pkg/mod.py": "x = 1\n",
    }
    assert _leftovers(store) == []


def test_put_preserves_permission_bits_and_makes_the_tree_read_only(store: CodeStore) -> None:
    data = _zip(
        ("bin/", b"", stat.S_IFDIR | 0o750),
        _file("bin/bootstrap", "#!/bin/sh\n", perms=0o755),
        _file("data.txt", "d", perms=0o600),
        _file("setuid", "s", perms=0o4755),
    )

    root = store.code_dir(store.put(data)[0])

    def perms(name: str) -> int:
        return stat.S_IMODE((root / name).stat().st_mode)

    assert perms("bin/bootstrap") == 0o555
    assert os.access(root / "bin/bootstrap", os.X_OK)
    assert perms("data.txt") == 0o400
    assert perms("setuid") == 0o555  # no setuid bit from an upload
    assert perms("bin") == 0o550
    assert perms(".") == 0o555
    for path in [root, *root.rglob("*")]:
        assert path.stat().st_mode & 0o222 == 0, path


def test_zip_without_unix_modes_gets_readable_defaults(store: CodeStore) -> None:
    root = store.code_dir(store.put(_zip(_file("dir/app.py", "x"), unix=False))[0])

    assert stat.S_IMODE((root / "dir/app.py").stat().st_mode) == 0o444
    assert stat.S_IMODE((root / "dir").stat().st_mode) == 0o555


def test_put_is_idempotent(store: CodeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _zip(_file("app.py", "x"))
    sha, _ = store.put(data)
    inode = store.code_dir(sha).stat().st_ino

    def fail(zip_bytes: bytes, dest: Path) -> None:
        raise AssertionError("unpacked twice")

    monkeypatch.setattr(blobs, "unpack", fail)
    assert store.put(data) == (sha, len(data))
    assert store.code_dir(sha).stat().st_ino == inode


def test_put_redoes_a_bundle_whose_zip_was_lost(store: CodeStore) -> None:
    data = _zip(_file("app.py", "x"))
    sha, _ = store.put(data)
    store.zip_path(sha).unlink()

    assert not store.has(sha)
    assert store.put(data) == (sha, len(data))
    assert store.zip_path(sha).read_bytes() == data
    assert _leftovers(store) == []


def test_symlinks_inside_the_tree_stay_symlinks(store: CodeStore) -> None:
    data = _zip(
        _file("lib/libfoo.so.1", "elf"),
        _link("lib/libfoo.so", "libfoo.so.1"),
        _link("current", "lib"),
    )

    root = store.code_dir(store.put(data)[0])

    assert os.readlink(root / "lib/libfoo.so") == "libfoo.so.1"
    assert (root / "current/libfoo.so").read_text() == "elf"


def test_empty_zip_is_an_empty_tree(store: CodeStore) -> None:
    assert _tree(store.code_dir(store.put(_zip())[0])) == {}


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"not a zip", "File is not a zip file"),
        (_zip(_file("../evil.py")), "entry '../evil.py' would be written outside"),
        (_zip(_file("a/../../evil.py")), "would be written outside"),
        (_zip(_file("..\\evil.py")), "would be written outside"),
        (_zip(_file("/etc/passwd")), "entry '/etc/passwd' has an absolute path"),
        (_zip(_file("C:/evil.py")), "has an absolute path"),
        (_zip(_link("etc", "/etc")), "symbolic link 'etc' -> '/etc' points outside the tree"),
        (_zip(_link("up", "../..")), "points outside the tree"),
        (_zip(_link("here", "."), _link("here/up", "../x")), "is inside symbolic link 'here'"),
        (_zip(_file("a", "file"), _file("a/b", "under a file")), "'a/b' conflicts"),
        (_zip(_file("a/b"), _link("a", "elsewhere")), "'a' conflicts"),
    ],
)
def test_bad_zips_are_refused(store: CodeStore, data: bytes, problem: str) -> None:
    with pytest.raises(InvalidZipFileException) as excinfo:
        store.put(data)

    assert excinfo.value.message.startswith("Could not unzip uploaded file: ")
    assert problem in excinfo.value.message
    assert not store.has(hashlib.sha256(data).hexdigest())
    assert list(store.root.glob("*/*")) == []  # nothing published, no temporary leftovers


def test_corrupt_member_is_refused(store: CodeStore) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("app.py", "x" * 100)
    data = buf.getvalue().replace(b"x" * 100, b"y" * 100)

    with pytest.raises(InvalidZipFileException, match=r"Bad CRC-32 for file 'app\.py'"):
        store.put(data)
    assert list(store.root.glob("*/*")) == []


# lookups


def test_lookups_of_missing_or_malformed_digests(store: CodeStore) -> None:
    missing = "0" * 64
    assert not store.has(missing)
    with pytest.raises(FileNotFoundError, match=f"code bundle {missing} is not in the code store"):
        store.code_dir(missing)
    with pytest.raises(FileNotFoundError):
        store.zip_path(missing)
    with pytest.raises(ValueError, match="not a hex SHA-256 digest"):
        store.code_dir("../../etc")


# opt_view


def _layer(store: CodeStore, *entries: Entry) -> str:
    return store.put(_zip(*entries))[0]


def test_opt_view_of_no_layers_is_none(store: CodeStore) -> None:
    assert store.opt_view([]) is None


def test_opt_view_merges_layers_in_order_later_wins(store: CodeStore) -> None:
    first = _layer(
        store,
        _file("python/shared.py", "first"),
        _file("python/only_first.py", "1"),
        _file("bin/tool", "first tool", perms=0o755),
        _file("conflict/inner.txt", "a directory in the first layer"),
    )
    second = _layer(
        store,
        _file("python/shared.py", "second"),
        _file("python/only_second.py", "2"),
        _file("conflict", "a file in the second layer"),
        _link("lib/libx.so", "../python/only_second.py"),
    )

    view = store.opt_view([first, second])

    assert view is not None
    assert _tree(view) == {
        "python": "/",
        "python/shared.py": "second",
        "python/only_first.py": "1",
        "python/only_second.py": "2",
        "bin": "/",
        "bin/tool": "first tool",
        "conflict": "a file in the second layer",
        "lib": "/",
        "lib/libx.so": "-> ../python/only_second.py",
    }
    reversed_view = store.opt_view([second, first])
    assert reversed_view is not None and reversed_view != view
    assert (reversed_view / "python/shared.py").read_text() == "first"
    assert _leftovers(store) == []


def test_opt_view_is_read_only_and_shares_inodes_with_the_layers(store: CodeStore) -> None:
    sha = _layer(store, _file("bin/tool", "t", perms=0o755), _file("lib/data", "d"))

    view = store.opt_view([sha])

    assert view is not None
    assert (view / "bin/tool").stat().st_ino == (store.code_dir(sha) / "bin/tool").stat().st_ino
    assert stat.S_IMODE((view / "bin/tool").stat().st_mode) == 0o555
    assert stat.S_IMODE((view / "lib/data").stat().st_mode) == 0o444
    for path in [view, *view.rglob("*")]:
        assert path.stat().st_mode & 0o222 == 0, path


def test_opt_view_copies_where_hard_links_fail(
    store: CodeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = _layer(store, _file("bin/tool", "t", perms=0o755))

    def no_link(src: object, dst: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    view = store.opt_view([sha])

    assert view is not None
    tool = view / "bin/tool"
    assert tool.stat().st_ino != (store.code_dir(sha) / "bin/tool").stat().st_ino
    assert tool.read_text() == "t"
    assert stat.S_IMODE(tool.stat().st_mode) == 0o555


def test_opt_view_is_built_once_and_reused(
    store: CodeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = _layer(store, _file("python/x.py", "x"))
    view = store.opt_view([sha])

    def fail(source: Path, dest: Path) -> None:
        raise AssertionError("built twice")

    monkeypatch.setattr(blobs, "_merge", fail)
    assert store.opt_view([sha]) == view


def test_opt_view_of_a_missing_layer_raises_and_leaves_nothing(store: CodeStore) -> None:
    sha = _layer(store, _file("python/x.py", "x"))

    with pytest.raises(FileNotFoundError):
        store.opt_view([sha, "1" * 64])
    assert list((store.root / "opt").iterdir()) == []


def test_opt_view_refuses_links_that_escape_once_merged(store: CodeStore) -> None:
    # Each layer is fine alone; merged, "python" becomes a link to "." and
    # "lib/up" -> "../python/.." resolves to the parent of /opt.
    first = _layer(store, _file("python/x.py"), _link("lib/up", "../python/.."))
    second = _layer(store, _link("python", "."))

    with pytest.raises(InvalidZipFileException, match="'lib/up'"):
        store.opt_view([first, second])
    assert list((store.root / "opt").iterdir()) == []
