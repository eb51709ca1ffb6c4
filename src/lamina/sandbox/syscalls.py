"""The Linux system calls the sandbox needs and Python's `os` module does not offer.

Stdlib only: the nursery (a separate `python -I -S` process) imports it. Every wrapper raises
OSError with the errno and the call's name, as `os` does.
"""

from __future__ import annotations

import ctypes
import os
import platform

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = (
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
)

# Namespaces (linux/sched.h)
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080

# mount(2) flags (linux/mount.h)
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 0x2

# The new mount API (5.2+; mount_setattr 5.12+). Same numbers on every architecture.
_SYS_OPEN_TREE = 428
_SYS_MOVE_MOUNT = 429
_SYS_MOUNT_SETATTR = 442
_SYS_CLOSE_RANGE = 436
OPEN_TREE_CLONE = 0x1
OPEN_TREE_CLOEXEC = 0o2000000
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
CLOSE_RANGE_CLOEXEC = 0x4

# prctl(2)
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_CAPBSET_DROP = 24
PR_SET_MM = 35
PR_SET_MM_MAP = 14
_MM_FIELDS = (
    "start_code", "end_code", "start_data", "end_data", "start_brk", "brk", "start_stack",
    "arg_start", "arg_end", "env_start", "env_end",
)  # fmt: skip
# Where /proc/self/stat has the others (all but brk).
_MM_STAT_FIELDS = {
    "start_code": 26, "end_code": 27, "start_stack": 28, "start_data": 45, "end_data": 46,
    "start_brk": 47, "arg_start": 48, "arg_end": 49, "env_start": 50, "env_end": 51,
}  # fmt: skip
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SECCOMP_MODE_FILTER = 2

_MACHINE = platform.machine()
# pivot_root has no glibc wrapper; its number is per architecture.
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(_MACHINE, -1)
_SYS_CAPSET = {"x86_64": 126, "aarch64": 91}.get(_MACHINE, -1)


def _check(result: int, call: str) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{call}: {os.strerror(errno)}")
    return result


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    _check(
        _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data) if data else None),
        f"mount {target}",
    )


def umount2(target: str, flags: int) -> None:
    _check(_libc.umount2(_b(target), ctypes.c_int(flags)), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(_SYS_PIVOT_ROOT, _b(new_root), _b(put_old)), "pivot_root")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, ctypes.c_size_t(len(raw))), "sethostname")


class _MountAttr(ctypes.Structure):
    _fields_ = (
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    )


def open_tree(path: str, attributes: int) -> int:
    """A detached copy of the mount tree at `path` (a file descriptor), with `attributes`
    (MOUNT_ATTR_*) set on every mount in it; `move_mount` attaches it elsewhere, even in
    another mount namespace."""
    fd = _check(
        _libc.syscall(
            _SYS_OPEN_TREE,
            ctypes.c_int(AT_FDCWD),
            _b(path),
            ctypes.c_uint(OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE),
        ),
        f"open_tree {path}",
    )
    if attributes:
        attr = _MountAttr(attributes, 0, 0, 0)
        try:
            _check(
                _libc.syscall(
                    _SYS_MOUNT_SETATTR,
                    ctypes.c_int(fd),
                    b"",
                    ctypes.c_uint(AT_EMPTY_PATH | AT_RECURSIVE),
                    ctypes.byref(attr),
                    ctypes.c_size_t(ctypes.sizeof(attr)),
                ),
                f"mount_setattr {path}",
            )
        except OSError:
            os.close(fd)
            raise
    return fd


def move_mount(tree_fd: int, target: str) -> None:
    _check(
        _libc.syscall(
            _SYS_MOVE_MOUNT,
            ctypes.c_int(tree_fd),
            b"",
            ctypes.c_int(AT_FDCWD),
            _b(target),
            ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH),
        ),
        f"move_mount {target}",
    )


def prctl(option: int, arg2: int = 0, arg3: int = 0) -> None:
    _check(
        _libc.prctl(
            ctypes.c_int(option),
            ctypes.c_ulong(arg2),
            ctypes.c_ulong(arg3),
            ctypes.c_ulong(0),
            ctypes.c_ulong(0),
        ),
        f"prctl {option}",
    )


class _MmMap(ctypes.Structure):
    """struct prctl_mm_map (linux/prctl.h)."""

    _fields_ = [
        *((name, ctypes.c_uint64) for name in _MM_FIELDS),
        ("auxv", ctypes.c_void_p),
        ("auxv_size", ctypes.c_uint32),
        ("exe_fd", ctypes.c_uint32),
    ]


_kept: list[ctypes.Array[ctypes.c_char]] = []  # what /proc/self/cmdline and environ show


def show_command(argv: list[str], env: dict[str, str]) -> bool:
    """Make /proc/self/cmdline and /proc/self/environ show `argv` and `env`, as an exec of
    them would. The kernel reads both from the process's memory, between addresses set by
    the exec; PR_SET_MM_MAP (a checkpoint/restore call that needs no privilege) points them
    at new buffers, kept for the life of the process. False where the kernel lacks it."""
    with open("/proc/self/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    # stat(5) numbers its fields from 1; what follows ")" starts at field 3.
    current = {name: int(fields[number - 3]) for name, number in _MM_STAT_FIELDS.items()}
    _libc.sbrk.restype = ctypes.c_void_p
    current["brk"] = _libc.sbrk(0)
    for strings, start, end in (
        (argv, "arg_start", "arg_end"),
        ([f"{k}={v}" for k, v in env.items()], "env_start", "env_end"),
    ):
        block = b"".join(s.encode("utf-8", "surrogateescape") + b"\0" for s in strings)
        buffer = ctypes.create_string_buffer(block, len(block) or 1)
        _kept.append(buffer)
        current[start] = ctypes.addressof(buffer)
        current[end] = current[start] + max(len(block), 1)
    mm = _MmMap(**current, auxv=None, auxv_size=0, exe_fd=0xFFFFFFFF)
    result = _libc.prctl(
        ctypes.c_int(PR_SET_MM), ctypes.c_ulong(PR_SET_MM_MAP), ctypes.byref(mm),
        ctypes.c_ulong(ctypes.sizeof(mm)), ctypes.c_ulong(0),
    )  # fmt: skip
    return bool(result == 0)


def close_all_but(*keep: int) -> None:
    """Close every descriptor but `keep`: one close_range per gap, however many are open
    (a nursery with a thousand environments holds a thousand sockets)."""
    start = 0
    for fd in sorted(set(keep)):
        if fd > start:
            _close_range(start, fd - 1)
        start = fd + 1
    _close_range(start, 0xFFFFFFFF)


def _close_range(first: int, last: int) -> None:
    _check(
        _libc.syscall(
            _SYS_CLOSE_RANGE, ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(0)
        ),
        "close_range",
    )


def close_from(first_fd: int) -> None:
    """Close every descriptor from `first_fd` up (one call, however many there are)."""
    _close_range(first_fd, 0xFFFFFFFF)


def cloexec_from(first_fd: int) -> None:
    """Mark every descriptor from `first_fd` up close-on-exec."""
    _check(
        _libc.syscall(
            _SYS_CLOSE_RANGE,
            ctypes.c_uint(first_fd),
            ctypes.c_uint(0xFFFFFFFF),
            ctypes.c_uint(CLOSE_RANGE_CLOEXEC),
        ),
        "close_range",
    )


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


def drop_bounding_set() -> None:
    """No capability can be gained again, even by exec (needs CAP_SETPCAP: call it first)."""
    with open("/proc/sys/kernel/cap_last_cap") as handle:
        last = int(handle.read())
    for cap in range(last + 1):
        prctl(PR_CAPBSET_DROP, cap)


def clear_ambient() -> None:
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


def clear_capabilities() -> None:
    """Empty the effective, permitted and inheritable sets (lowering needs no privilege)."""
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3: two 32-bit words
    data = (_CapData * 2)()
    _check(_libc.syscall(_SYS_CAPSET, ctypes.byref(header), ctypes.byref(data)), "capset")


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


class SeccompFilter:
    """A classic-BPF seccomp filter, ready to install with one system call."""

    def __init__(self, program: bytes) -> None:
        self._buffer = ctypes.create_string_buffer(program, len(program))
        self._fprog = _SockFprog(len(program) // 8, ctypes.cast(self._buffer, ctypes.c_void_p))

    def install(self) -> None:
        """Needs no_new_privs, or CAP_SYS_ADMIN."""
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(self._fprog))


def load_seccomp(program: bytes) -> None:
    SeccompFilter(program).install()


def supported_machine() -> bool:
    return _SYS_PIVOT_ROOT > 0
