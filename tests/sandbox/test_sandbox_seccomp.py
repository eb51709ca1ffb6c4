"""The seccomp filter, run on a classic-BPF interpreter for both architectures.

The interpreter below implements the few instructions the filter uses; every decision is
checked for x86_64 and aarch64, whatever machine runs the tests.
"""

from __future__ import annotations

import errno
import struct

import pytest

from lamina.sandbox import seccomp as sx

X86, ARM = sx.AUDIT_ARCH_X86_64, sx.AUDIT_ARCH_AARCH64
EPERM = sx.RET_ERRNO | errno.EPERM
ENOSYS = sx.RET_ERRNO | errno.ENOSYS
PROGRAM = sx.build()


def run(program: bytes, nr: int, arch: int, args: tuple[int, ...] = ()) -> int:
    """Evaluate the filter on one `struct seccomp_data`."""
    padded = (*args, *([0] * (6 - len(args))))
    data = struct.pack("<IIQ6Q", nr, arch, 0, *padded)
    ops = [struct.unpack_from("<HBBI", program, i) for i in range(0, len(program), 8)]
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = ops[pc]
        if code == sx.LD_W_ABS:
            acc = struct.unpack_from("<I", data, k)[0]
            pc += 1
        elif code == sx.RET_K:
            return k
        elif code in (sx.JEQ_K, sx.JGE_K, sx.JSET_K):
            taken = {
                sx.JEQ_K: acc == k,
                sx.JGE_K: acc >= k,
                sx.JSET_K: bool(acc & k),
            }[code]
            pc += 1 + (jt if taken else jf)
        else:
            raise AssertionError(f"unexpected opcode {code:#x} at {pc}")


def number(arch: int, name: str) -> int:
    return sx.SYSCALLS[arch][name]


@pytest.mark.parametrize("arch", [X86, ARM])
@pytest.mark.parametrize(
    "name",
    [
        "mount",
        "umount2",
        "pivot_root",
        "ptrace",
        "kexec_load",
        "bpf",
        "init_module",
        "finit_module",
        "delete_module",
        "reboot",
        "swapon",
        "swapoff",
        "keyctl",
        "add_key",
        "request_key",
        "perf_event_open",
        "userfaultfd",
        "open_by_handle_at",
        "setns",
        "io_uring_setup",
        "move_mount",
        "open_tree",
        "fsopen",
    ],
)
def test_dangerous_calls_are_refused_with_eperm(arch: int, name: str) -> None:
    assert run(PROGRAM, number(arch, name), arch) == EPERM


@pytest.mark.parametrize("arch", [X86, ARM])
def test_ordinary_calls_are_allowed(arch: int) -> None:
    ordinary = {X86: (0, 1, 2, 3, 9, 57, 59, 61, 231), ARM: (63, 64, 56, 57, 222, 221, 93)}
    for nr in ordinary[arch]:
        assert run(PROGRAM, nr, arch) == sx.RET_ALLOW, nr


@pytest.mark.parametrize("arch", [X86, ARM])
def test_clone_is_allowed_for_threads_and_processes_but_not_namespaces(arch: int) -> None:
    clone = number(arch, "clone")
    thread_flags = 0x3D0F00  # what glibc's pthread_create passes
    assert run(PROGRAM, clone, arch, (thread_flags,)) == sx.RET_ALLOW
    assert run(PROGRAM, clone, arch, (0x01200011,)) == sx.RET_ALLOW  # fork()
    for flag in (0x10000000, 0x20000, 0x20000000, 0x40000000, 0x02000000):
        assert run(PROGRAM, clone, arch, (0x11 | flag,)) == EPERM, hex(flag)


@pytest.mark.parametrize("arch", [X86, ARM])
def test_unshare_of_namespaces_is_refused_but_files_may_be_unshared(arch: int) -> None:
    unshare = number(arch, "unshare")
    assert run(PROGRAM, unshare, arch, (0x10000000,)) == EPERM  # CLONE_NEWUSER
    assert run(PROGRAM, unshare, arch, (0x80,)) == EPERM  # CLONE_NEWTIME
    assert run(PROGRAM, unshare, arch, (0x400,)) == sx.RET_ALLOW  # CLONE_FILES


@pytest.mark.parametrize("arch", [X86, ARM])
def test_clone3_answers_enosys_so_libc_falls_back_to_clone(arch: int) -> None:
    assert run(PROGRAM, number(arch, "clone3"), arch) == ENOSYS


@pytest.mark.parametrize("arch", [X86, ARM])
def test_personality_may_only_be_queried_or_set_to_the_usual_values(arch: int) -> None:
    personality = number(arch, "personality")
    assert run(PROGRAM, personality, arch, (0xFFFFFFFF,)) == sx.RET_ALLOW
    assert run(PROGRAM, personality, arch, (0,)) == sx.RET_ALLOW
    assert run(PROGRAM, personality, arch, (0x0040000,)) == EPERM  # ADDR_NO_RANDOMIZE


def test_foreign_abis_are_refused() -> None:
    assert run(PROGRAM, 0x40000000 | 165, X86) == EPERM  # x32's mount
    assert run(PROGRAM, 0x40000000 | 0, X86) == EPERM
    assert run(PROGRAM, 21, 0x40000003) == sx.RET_KILL_PROCESS  # i386's mount
    assert run(PROGRAM, 21, 0x40000028) == sx.RET_KILL_PROCESS  # arm32


def test_every_refused_name_has_a_number_on_x86_64() -> None:
    assert set(sx.REFUSED) <= set(sx.SYSCALLS[X86])


def test_a_jump_too_far_for_classic_bpf_is_an_error_not_a_wrong_filter() -> None:
    names = tuple(sx.REFUSED) * 6  # more than 255 instructions between a jump and its target
    with pytest.raises(ValueError, match="out of range"):
        sx.build(names)


PRECEDENCE = {sx.RET_KILL_PROCESS: 3, EPERM: 2, ENOSYS: 2, sx.RET_ALLOW: 0}


@pytest.mark.parametrize("arch", [X86, ARM, 0x40000003])
def test_the_two_stages_together_refuse_exactly_what_the_whole_filter_refuses(arch: int) -> None:
    early, late = sx.stages()
    numbers = range(0, 460) if arch != 0x40000003 else range(0, 10)
    args_cases = [(), (0x10000000,), (0x400,), (0x20000,), (0xFFFFFFFF,), (0x0040000,)]
    for nr in numbers:
        for args in args_cases:
            whole = run(PROGRAM, nr, arch, args)
            # seccomp applies every filter and keeps the most severe action
            stacked = max(run(early, nr, arch, args), run(late, nr, arch, args), key=PRECEDENCE.get)
            assert stacked == whole, (nr, args)


def test_the_late_stage_is_small_and_leaves_the_start_its_mounts_until_then() -> None:
    early, late = sx.stages()
    assert len(late) < len(early) // 3
    for arch in (X86, ARM):
        assert run(early, number(arch, "mount"), arch) == sx.RET_ALLOW
        assert run(early, number(arch, "move_mount"), arch) == sx.RET_ALLOW
        assert run(early, number(arch, "unshare"), arch, (0x40000000,)) == sx.RET_ALLOW
        assert run(late, number(arch, "mount"), arch) == EPERM
