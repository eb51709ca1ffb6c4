"""The seccomp filter every function runs under: a classic-BPF program built here.

It refuses (EPERM) the system calls a function never needs and that widen the kernel's
attack surface or reach past the sandbox: mounting, tracing other processes, loading kernel
code, BPF, keyrings, perf, userfaultfd, file handles, io_uring, and creating or entering
namespaces (`clone`/`unshare` with a CLONE_NEW* flag, `setns`). `clone3` answers ENOSYS, as
Docker's profile does, because its flags sit behind a pointer the filter cannot read: libc
then falls back to `clone`, whose flags it can. A call from any other ABI than the native
x86_64 or aarch64 one (i386, x32, arm32) could reach the same kernel code under other
numbers, so those are refused wholesale.

Layout of `struct seccomp_data`: nr (u32 at 0), arch (u32 at 4), instruction pointer (u64 at
8), args (6 x u64 from 16); both architectures are little-endian, so an argument's low word
is at 16 + 8 * i.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7
X32_SYSCALL_BIT = 0x40000000

RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
RET_ALLOW = 0x7FFF0000

# Classic BPF opcodes.
LD_W_ABS = 0x20
JEQ_K = 0x15
JGE_K = 0x35
JSET_K = 0x45
RET_K = 0x06

# CLONE_NEW{NS,CGROUP,UTS,IPC,USER,PID,NET}; unshare also takes CLONE_NEWTIME, which in
# clone's flags is part of the exit signal.
CLONE_NAMESPACES = 0x7E020000
UNSHARE_NAMESPACES = CLONE_NAMESPACES | 0x80
# personality() values Docker's profile allows: PER_LINUX, PER_LINUX32, UNAME26 variants,
# and the query. Others (ADDR_NO_RANDOMIZE...) switch hardening off.
PERSONALITY_ALLOWED = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

REFUSED = (
    "mount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount", "fspick",
    "move_mount", "open_tree", "mount_setattr", "ptrace", "process_vm_readv",
    "process_vm_writev", "pidfd_getfd", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "bpf", "perf_event_open", "userfaultfd", "keyctl",
    "add_key", "request_key", "open_by_handle_at", "setns", "reboot", "swapon", "swapoff",
    "quotactl", "quotactl_fd", "acct", "settimeofday", "clock_settime", "clock_adjtime",
    "syslog", "lookup_dcookie", "vhangup", "sethostname", "setdomainname", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "nfsservctl",
    # x86_64 only
    "iopl", "ioperm", "uselib", "_sysctl", "create_module", "get_kernel_syms", "query_module",
)  # fmt: skip

# The calls the filter looks at, by architecture (x86_64: asm/unistd_64.h; aarch64: the
# generic table, asm-generic/unistd.h).
SYSCALLS: Mapping[int, Mapping[str, int]] = {
    AUDIT_ARCH_X86_64: {
        "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "fsopen": 430,
        "fsconfig": 431, "fsmount": 432, "fspick": 433, "move_mount": 429, "open_tree": 428,
        "mount_setattr": 442, "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
        "pidfd_getfd": 438, "kexec_load": 246, "kexec_file_load": 320, "init_module": 175,
        "finit_module": 313, "delete_module": 176, "bpf": 321, "perf_event_open": 298,
        "userfaultfd": 323, "keyctl": 250, "add_key": 248, "request_key": 249,
        "open_by_handle_at": 304, "setns": 308, "reboot": 169, "swapon": 167, "swapoff": 168,
        "quotactl": 179, "quotactl_fd": 443, "acct": 163, "settimeofday": 164,
        "clock_settime": 227, "clock_adjtime": 305, "syslog": 103, "lookup_dcookie": 212,
        "vhangup": 153, "sethostname": 170, "setdomainname": 171, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "nfsservctl": 180, "iopl": 172,
        "ioperm": 173, "uselib": 134, "_sysctl": 156, "create_module": 174,
        "get_kernel_syms": 177, "query_module": 178,
        "clone": 56, "clone3": 435, "unshare": 272, "personality": 135,
    },
    AUDIT_ARCH_AARCH64: {
        "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51, "fsopen": 430,
        "fsconfig": 431, "fsmount": 432, "fspick": 433, "move_mount": 429, "open_tree": 428,
        "mount_setattr": 442, "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271,
        "pidfd_getfd": 438, "kexec_load": 104, "kexec_file_load": 294, "init_module": 105,
        "finit_module": 273, "delete_module": 106, "bpf": 280, "perf_event_open": 241,
        "userfaultfd": 282, "keyctl": 219, "add_key": 217, "request_key": 218,
        "open_by_handle_at": 265, "setns": 268, "reboot": 142, "swapon": 224, "swapoff": 225,
        "quotactl": 60, "quotactl_fd": 443, "acct": 89, "settimeofday": 170,
        "clock_settime": 112, "clock_adjtime": 266, "syslog": 116, "lookup_dcookie": 18,
        "vhangup": 58, "sethostname": 161, "setdomainname": 162, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "nfsservctl": 42,
        "clone": 220, "clone3": 435, "unshare": 97, "personality": 92,
    },
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Op:
    code: int
    k: int
    jt: str | int = 0  # a label, or 0 for "the next instruction"
    jf: str | int = 0


class _Program:
    """Instructions with symbolic jump targets, assembled into `struct sock_filter`s."""

    def __init__(self) -> None:
        self._ops: list[_Op] = []
        self._labels: dict[str, int] = {}

    def label(self, name: str) -> None:
        self._labels[name] = len(self._ops)

    def load(self, offset: int) -> None:
        self._ops.append(_Op(LD_W_ABS, offset))

    def jump(self, code: int, k: int, jt: str | int = 0, jf: str | int = 0) -> None:
        self._ops.append(_Op(code, k, jt, jf))

    def ret(self, value: int) -> None:
        self._ops.append(_Op(RET_K, value))

    def assemble(self) -> bytes:
        out = bytearray()
        for index, op in enumerate(self._ops):
            jt, jf = self._offset(index, op.jt), self._offset(index, op.jf)
            out += struct.pack("<HBBI", op.code, jt, jf, op.k)
        return bytes(out)

    def _offset(self, index: int, target: str | int) -> int:
        if isinstance(target, int):
            return target
        offset = self._labels[target] - index - 1
        if not 0 <= offset <= 255:  # classic BPF jumps forward, at most 255 instructions
            raise ValueError(f"seccomp: jump to {target} out of range ({offset})")
        return offset


CHECKS = ("clone", "unshare", "clone3", "personality")
# A sandbox is prepared ahead of time and still mounts the function's directories (and, for
# `network: none`, unshares a network namespace) when it starts: the filter is installed in
# two stages, most of it early (its compilation is off the cold start), these calls late.
LATE = ("mount", "move_mount")


def _arch_block(
    program: _Program, arch: int, refused: Iterable[str], checks: Iterable[str]
) -> None:
    numbers = SYSCALLS[arch]
    tag = f"{arch:x}"
    targets = {
        "clone": f"clone_{tag}",
        "unshare": f"unshare_{tag}",
        "clone3": f"enosys_{tag}",
        "personality": f"personality_{tag}",
    }
    program.label(f"arch_{tag}")
    program.load(0)
    if arch == AUDIT_ARCH_X86_64:
        program.jump(JGE_K, X32_SYSCALL_BIT, f"deny_{tag}")
    for check in checks:
        program.jump(JEQ_K, numbers[check], targets[check])
    for name in refused:
        if name in numbers:
            program.jump(JEQ_K, numbers[name], f"deny_{tag}")
    program.ret(RET_ALLOW)
    program.label(f"clone_{tag}")
    program.load(16)
    program.jump(JSET_K, CLONE_NAMESPACES, f"deny_{tag}", f"allow_{tag}")
    program.label(f"unshare_{tag}")
    program.load(16)
    program.jump(JSET_K, UNSHARE_NAMESPACES, f"deny_{tag}", f"allow_{tag}")
    program.label(f"personality_{tag}")
    program.load(16)
    for value in PERSONALITY_ALLOWED:
        program.jump(JEQ_K, value, f"allow_{tag}")
    program.label(f"deny_{tag}")
    program.ret(RET_ERRNO | errno.EPERM)
    program.label(f"allow_{tag}")
    program.ret(RET_ALLOW)
    program.label(f"enosys_{tag}")
    program.ret(RET_ERRNO | errno.ENOSYS)


def build(
    refused: Iterable[str] = REFUSED,
    checks: Iterable[str] = CHECKS,
    foreign: int = RET_KILL_PROCESS,
) -> bytes:
    """The filter for both architectures, as the bytes of a `struct sock_filter` array:
    `refused` answer EPERM, `checks` get the argument checks described above, and calls of
    a foreign ABI get `foreign`."""
    names, tests = tuple(refused), tuple(checks)
    program = _Program()
    program.load(4)
    program.jump(JEQ_K, AUDIT_ARCH_X86_64, f"arch_{AUDIT_ARCH_X86_64:x}")
    program.jump(JEQ_K, AUDIT_ARCH_AARCH64, f"arch_{AUDIT_ARCH_AARCH64:x}")
    program.ret(foreign)
    _arch_block(program, AUDIT_ARCH_X86_64, names, tests)
    _arch_block(program, AUDIT_ARCH_AARCH64, names, tests)
    return program.assemble()


def stages() -> tuple[bytes, bytes]:
    """(early, late): stacked, they refuse exactly what `build()` refuses."""
    early = build([n for n in REFUSED if n not in LATE], [c for c in CHECKS if c != "unshare"])
    late = build(LATE, ["unshare"], foreign=RET_ALLOW)  # the early stage kills those
    return early, late
