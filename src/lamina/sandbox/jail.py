"""Inside the nursery's children: how a seed becomes an execution environment's sandbox.

A seed is made ahead of time, off the invocation path, in two processes:

    S  forked by the nursery, which moves it into its cgroup slot (one process moving
       pids one after another is far cheaper than many processes each moving itself while
       others fork: cgroup v1 serialises the two), unshares the mount, pid, ipc and uts
       namespaces, forks R, tells the nursery and Lamina R's pid (Lamina also gets a
       pidfd), and exits; R is then the nursery's child (it is their subreaper).
    R  pid 1 of the new pid namespace: builds the function's file system on a tmpfs
       (read-only system, /proc, /dev, private /tmp) and pivots into it, then waits for
       Lamina's start message: it mounts the function's code at /var/task and its layers
       at /opt (trees Lamina opened with open_tree), makes the root read-only, becomes
       uid 993 with no capabilities, no_new_privs and the seccomp filter, and execs the
       runtime, which so is the sandbox's pid 1 (as in a container without --init). A
       Python runtime on the nursery's own interpreter is not exec'd: R, a fork of the
       nursery, which has loaded it, becomes it (runtimes/python/zygote.py).

When the runtime exits, the kernel kills whatever is left in its pid namespace; the
nursery reaps it and sends its wait status on the seed's control socket. Starting an
environment costs one message and a handful of system calls in R. Messages travel on the
seed's SOCK_SEQPACKET control socket as JSON, with descriptors. Stdlib only: this runs in
the nursery's interpreter, never imports Lamina's services.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import resource
import select
import signal
import socket
import stat
import struct
import traceback
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NoReturn

from lamina.runtimes.python import zygote
from lamina.sandbox import syscalls as sc

NAMESPACES = sc.CLONE_NEWNS | sc.CLONE_NEWPID | sc.CLONE_NEWIPC | sc.CLONE_NEWUTS
MAX_MESSAGE = 1 << 20
NOFILE = 1024  # Lambda's file descriptor limit
# Character devices (major, minor) a function may use, made in the sandbox's /dev.
DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8),
           "urandom": (1, 9), "tty": (5, 0)}  # fmt: skip
# /proc entries that describe the host rather than the sandbox (as Docker masks them).
PROC_HIDDEN_FILES = ("kcore", "keys", "timer_list", "sched_debug", "latency_stats", "kmsg")
PROC_HIDDEN_DIRS = ("acpi", "scsi")
PROC_READ_ONLY = ("bus", "fs", "irq", "sys", "sysrq-trigger")
RO = sc.MOUNT_ATTR_RDONLY | sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NODEV
SIOCSIFFLAGS = 0x8914
IFF_UP_LOOPBACK_RUNNING = 0x1 | 0x8 | 0x40

Config = Mapping[str, Any]


def send(ctl: socket.socket, message: Mapping[str, Any], fds: Sequence[int] = ()) -> None:
    socket.send_fds(ctl, [json.dumps(message).encode()], list(fds))


def receive(ctl: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """The next message and its descriptors; (None, []) at end of stream."""
    data, fds, _, _ = socket.recv_fds(ctl, MAX_MESSAGE, 32)
    if not data:
        for fd in fds:
            os.close(fd)
        return None, []
    message: dict[str, Any] = json.loads(data)
    return message, fds


def readable(fds: Iterable[int], timeout: float | None = None) -> list[int]:
    """Those of `fds` ready to read, or at end of stream (poll(2): select(2) refuses
    descriptors above 1,023, and a node with a thousand environments has more)."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    return [fd for fd, _ in poller.poll(None if timeout is None else timeout * 1000)]


def reap(sockets: dict[int, socket.socket]) -> list[int]:
    """Reap every child that has exited; send the wait status of those in `sockets` (pid ->
    its environment's socket) on their socket, then close it (its end of stream tells
    Lamina the environment is gone). The pids reaped."""
    reaped: list[int] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped.append(pid)
        ctl = sockets.pop(pid, None)
        if ctl is not None:
            with contextlib.suppress(OSError):
                send(ctl, {"exit": status})
            ctl.close()


def _fail(ctl: socket.socket, where: str) -> NoReturn:
    with contextlib.suppress(OSError):
        send(ctl, {"error": f"{where}: {traceback.format_exc(limit=-3).strip()}"})
    os._exit(1)


# S: the seed's first process


def seed(config: Config, ctl: socket.socket, tell: int, go: int, spare: bool = True) -> NoReturn:
    """Run in a fresh child of the nursery; never returns. `go` is a pipe on which the
    nursery says (one byte) that it has put this process in its cgroup slot; `tell` is a
    pipe to the nursery, which learns there whose exit status to report on `ctl`. A `spare`
    seed is made ahead of need (not for a start that waits for it) and may spend more to
    make the start cheaper."""
    try:
        if os.read(go, 1) != b"1":
            os._exit(0)  # the nursery could not place it (and told Lamina why)
        os.close(go)
        sc.unshare(NAMESPACES)
        sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
        child = os.fork()
        if child == 0:
            os.close(tell)
            _runtime(config, ctl, spare)
        os.write(tell, struct.pack("=i", child))
        pidfd = os.pidfd_open(child)
        send(ctl, {"pid": child}, [pidfd])
    except BaseException:
        _fail(ctl, "seed")
    os._exit(0)


def build_root(config: Config) -> None:
    """The function's file system on a fresh tmpfs, then pivot into it."""
    root = str(config["root"])
    sc.mount("tmpfs", root, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "mode=0755,size=4m")
    _dev(root)
    _proc(root)
    # /tmp before the binds: Lamina's own files may live under the host's /tmp (tests do).
    os.makedirs(f"{root}/tmp")
    sc.mount(
        "tmpfs",
        f"{root}/tmp",
        "tmpfs",
        sc.MS_NOSUID | sc.MS_NODEV,
        f"mode=1777,size={int(config['tmp_bytes'])}",
    )
    os.makedirs(f"{root}/var/task")
    os.makedirs(f"{root}/opt")
    _etc_files(root, config)
    for source, target in config["binds"]:
        bind(source, root + target, RO)
    for target, path in config["symlinks"]:
        os.makedirs(os.path.dirname(root + path), exist_ok=True)
        os.symlink(target, root + path)
    for hidden in config["masks"]:
        flags = sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV
        sc.mount("tmpfs", root + hidden, "tmpfs", flags, "size=0")
    sc.sethostname(str(config["hostname"]))
    os.chdir(root)
    sc.pivot_root(".", ".")
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")


def bind(source: str, target: str, attributes: int) -> None:
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "a"):
            pass
    tree = sc.open_tree(source, attributes)
    try:
        sc.move_mount(tree, target)
    finally:
        os.close(tree)


def _etc_files(root: str, config: Config) -> None:
    # Lambda's sandbox user, so that getpwuid() and `whoami` answer; no host accounts leak.
    uid, gid, user = int(config["uid"]), int(config["gid"]), str(config["user"])
    os.makedirs(f"{root}/etc", exist_ok=True)
    with open(f"{root}/etc/passwd", "w") as handle:
        handle.write(
            "root:x:0:0:root:/root:/sbin/nologin\n"
            f"{user}:x:{uid}:{gid}::/tmp:/sbin/nologin\n"
            "nobody:x:65534:65534:nobody:/:/sbin/nologin\n"
        )
    with open(f"{root}/etc/group", "w") as handle:
        handle.write(f"root:x:0:\n{user}:x:{gid}:\nnobody:x:65534:\n")


def _dev(root: str) -> None:
    dev = f"{root}/dev"
    os.makedirs(dev)
    sc.mount("tmpfs", dev, "tmpfs", sc.MS_NOSUID | sc.MS_NOEXEC, "mode=0755,size=64k")
    for name, (major, minor) in DEVICES.items():
        # As runc does for a root container: a node costs one call where a bind costs two.
        os.mknod(f"{dev}/{name}", stat.S_IFCHR | 0o666, os.makedev(major, minor))
        os.chmod(f"{dev}/{name}", 0o666)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0")):
        os.symlink(target, f"{dev}/{name}")
    os.symlink("/proc/self/fd/1", f"{dev}/stdout")
    os.symlink("/proc/self/fd/2", f"{dev}/stderr")
    os.makedirs(f"{dev}/shm")
    sc.mount("tmpfs", f"{dev}/shm", "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "mode=1777,size=64m")


def _proc(root: str) -> None:
    proc = f"{root}/proc"
    os.makedirs(proc)
    # This process is pid 1 of the new pid namespace: the new /proc shows only the sandbox.
    sc.mount("proc", proc, "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    for name in PROC_HIDDEN_FILES:
        if os.path.exists(f"{proc}/{name}"):
            _bind_nosuid(f"{root}/dev/null", f"{proc}/{name}")
    for name in PROC_HIDDEN_DIRS:
        if os.path.isdir(f"{proc}/{name}"):
            flags = sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV
            sc.mount("tmpfs", f"{proc}/{name}", "tmpfs", flags, "size=0")
    for name in PROC_READ_ONLY:
        if os.path.exists(f"{proc}/{name}"):
            bind(f"{proc}/{name}", f"{proc}/{name}", RO | sc.MOUNT_ATTR_NOEXEC)


def _bind_nosuid(source: str, target: str) -> None:
    # Every mount in the sandbox is nosuid; a bind takes its flags only from a remount.
    sc.mount(source, target, None, sc.MS_BIND)
    sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_NOSUID)


# R: the sandbox's pid 1, until it execs the runtime


def prepare_nursery() -> None:
    """What every sandbox needs and the nursery can do once for all of its forks: an empty
    capability bounding set and no ambient capabilities (the nursery keeps its effective
    ones; it never execs)."""
    sc.drop_bounding_set()
    sc.clear_ambient()


def _runtime(config: Config, ctl: socket.socket, spare: bool) -> NoReturn:
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        build_root(config)  # pid 1 of the new pid namespace: its /proc is the sandbox's
        os.setsid()
        resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        tmp_bytes = int(config["tmp_bytes"])
        resource.setrlimit(resource.RLIMIT_FSIZE, (tmp_bytes, tmp_bytes))
        for number in (signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(number, signal.SIG_DFL)
        early, late = (sc.SeccompFilter(base64.b64decode(s)) for s in config["seccomp"])
        # Everything but the calls the start still makes: installing (compiling) the filter
        # costs a few hundred microseconds, better spent now than on a cold start.
        early.install()
        zygote.prepare(rehearse=spare)
        ready = Ready(
            int(config["uid"]), int(config["gid"]), late, os.open("/dev/null", os.O_RDONLY)
        )
        send(ctl, {"ready": True})
        message, fds = receive(ctl)
    except BaseException:
        _fail(ctl, "sandbox runtime")
    if message is None:
        os._exit(0)  # Lamina is gone
    try:
        start(ready, ctl, message, fds)
    except BaseException as exc:
        _report_failure(fds[1], exc)
    os._exit(127)


class Ready:
    """What the start needs, prepared with the seed."""

    __slots__ = ("gid", "late_filter", "null", "uid")

    def __init__(self, uid: int, gid: int, late_filter: sc.SeccompFilter, null: int) -> None:
        self.uid, self.gid, self.late_filter, self.null = uid, gid, late_filter, null


def start(ready: Ready, ctl: socket.socket, message: Mapping[str, Any], fds: list[int]) -> None:
    """Mount the function's directories, lock the sandbox down and exec the runtime."""
    log_fd = fds[0]
    argv: list[str] = list(message["argv"])
    env: dict[str, str] = dict(message["env"])
    # The Python runtime on the nursery's own interpreter, which has it loaded: no exec.
    in_process = zygote.accepts(argv)
    for target, index in message["mounts"]:
        if not os.path.exists(target):
            os.makedirs(target)
        sc.move_mount(fds[index], target)
        os.close(fds[index])
    sc.mount(
        None, "/", None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV
    )
    if message["network"] == "none":
        _private_network(ctl, int(message["api_port"]))
    os.chdir(message["cwd"])
    if in_process:
        sc.show_command(argv, env)  # what /proc/1/cmdline and environ show after an exec
    os.setgroups([])
    os.setresgid(ready.gid, ready.gid, ready.gid)
    os.setresuid(ready.uid, ready.uid, ready.uid)  # empties effective and permitted sets
    sc.clear_capabilities()
    sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
    ready.late_filter.install()
    os.dup2(ready.null, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    if in_process:
        # Changing users made the process undumpable (its /proc files root's); exec would
        # make it dumpable again.
        sc.prctl(sc.PR_SET_DUMPABLE, 1)
        sc.close_from(3)  # what the exec would close, the exec-status pipe among them
        zygote.become(argv, env)
    sc.cloexec_from(3)  # the exec-status pipe closes on a successful exec
    try:
        os.execve(_executable(argv[0], env), argv, env)
    except OSError as exc:
        raise ExecFailed(exc.errno or 0, exc.strerror or str(exc), argv[0]) from None


class ExecFailed(OSError):
    """The runtime's executable could not be run (Lambda: Runtime.InvalidEntrypoint)."""


def _private_network(ctl: socket.socket, port: int) -> None:
    """A network namespace with only loopback, where Lamina listens on the Runtime API's
    port (it forwards to the real endpoint)."""
    sc.unshare(sc.CLONE_NEWNET)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        import fcntl

        fcntl.ioctl(probe, SIOCSIFFLAGS, struct.pack("16sH", b"lo", IFF_UP_LOOPBACK_RUNNING))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    send(ctl, {"net": True}, [listener.fileno()])
    listener.close()


def _executable(name: str, env: Mapping[str, str]) -> str:
    if "/" in name:
        return name
    for folder in env.get("PATH", "/usr/bin:/bin").split(":"):
        candidate = f"{folder or '.'}/{name}"
        if os.access(candidate, os.X_OK):
            return candidate
    return name


def _report_failure(fd: int, exc: BaseException) -> None:
    """Tell Lamina, on the exec-status pipe, why the runtime was not started."""
    if isinstance(exc, ExecFailed):
        report = {"errno": exc.errno, "strerror": exc.strerror, "filename": exc.filename}
    else:
        report = {"error": traceback.format_exc(limit=-3).strip()}
    with contextlib.suppress(OSError):
        os.write(fd, json.dumps(report).encode())
