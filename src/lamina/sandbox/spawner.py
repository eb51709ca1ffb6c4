"""The plain driver's zygote: a warm Python interpreter that forks Python runtimes.

    <python3.x> -I -S spawner.py FD

An exec'd Python runtime spends ~10-30 ms starting its interpreter; a fork of this
process, which has the runtime loaded, becomes it in about a millisecond
(runtimes/python/zygote.py). Lamina (plain.py) sends, on FD, one message per start: the
runtime's argv, environment and working directory, with three descriptors: the log pipe,
the exec-status pipe and a control socket of that environment's own. The spawner keeps
two children forked ahead of time, each in its own session with the zygote's state reset
(writing to the zygote's pages after a fork copies them: better done before the start);
it hands the message to one, which puts the log on stdout and stderr and becomes the
runtime (closing the exec-status pipe; a failure is written to it instead). The spawner
sends the child's pid and a pidfd on the control socket, and when it reaps the child its
wait status; then it closes the socket: its end of stream means the environment is gone.
When Lamina's end of FD closes, however Lamina ended, the spawner kills its children's
process groups and exits.

Messages are jail.py's (SOCK_SEQPACKET, JSON with descriptors). Stdlib only.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Mapping
from typing import Any, NoReturn

READY = 2  # prepared children kept waiting
REFILL_DELAY_S = 0.05  # after a start: the runtime just started needs the CPU more


class Spawner:
    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.children: dict[int, socket.socket] = {}  # pid -> its environment's socket
        self.ready: deque[tuple[int, socket.socket]] = deque()  # prepared: pid, socket

    def serve(self) -> None:
        from lamina.sandbox import jail

        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        refill_at: float | None = 0.0
        while True:
            timeout = None if refill_at is None else max(0.0, refill_at - time.monotonic())
            readable = jail.readable([self.control.fileno(), wake_r], timeout)
            if wake_r in readable:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 4096)
                self._reap()
            if self.control.fileno() in readable:
                message, fds = jail.receive(self.control)
                if message is None:
                    return
                try:
                    self._start(message, fds)
                finally:
                    for fd in fds:
                        os.close(fd)
                refill_at = time.monotonic() + REFILL_DELAY_S
            elif refill_at is not None and time.monotonic() >= refill_at:
                while len(self.ready) < READY:
                    self.ready.append(self._prepare(spare=True))
                refill_at = None

    def _prepare(self, spare: bool) -> tuple[int, socket.socket]:
        """Fork a child that gets ready to become a runtime, then waits for its start (a
        `spare` one, made ahead of need, also rehearses the start: zygote.prepare)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        child = os.fork()
        if child == 0:
            ours.close()
            _child(theirs, spare)
        theirs.close()
        return child, ours

    def _start(self, message: Mapping[str, Any], fds: list[int]) -> None:
        from lamina.sandbox import jail

        ctl = socket.socket(fileno=os.dup(fds[2]))
        try:
            child, waiting = self.ready.popleft() if self.ready else self._prepare(spare=False)
        except OSError as exc:
            _report(fds[1], {"error": f"spawner: fork: {exc}"})
            ctl.close()
            return
        with waiting:
            jail.send(waiting, message, fds[:2])
        self.children[child] = ctl
        pidfd = os.pidfd_open(child)
        try:
            # Failing, Lamina gave up on this start: the child is reaped all the same.
            with contextlib.suppress(OSError):
                jail.send(ctl, {"pid": child}, [pidfd])
        finally:
            os.close(pidfd)

    def _reap(self) -> None:
        from lamina.sandbox import jail

        reaped = set(jail.reap(self.children))
        for entry in [e for e in self.ready if e[0] in reaped]:
            self.ready.remove(entry)  # a prepared child died waiting
            entry[1].close()

    def kill_all(self) -> None:
        for pid in [*self.children, *(pid for pid, _ in self.ready)]:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)


def _child(waiting: socket.socket, spare: bool) -> NoReturn:
    """A prepared child: its own session, the zygote's state reset; on its start message
    (argv, env, cwd with the log and exec-status pipes) it becomes the runtime."""
    from lamina.runtimes.python import zygote
    from lamina.sandbox import jail
    from lamina.sandbox import syscalls as sc

    exec_w = -1
    try:
        os.setsid()  # its own process group: killing the environment kills what it started
        zygote.prepare(rehearse=spare)
        # Only its own descriptors: holding another environment's socket would keep that
        # socket's end of stream, Lamina's signal that the environment is gone, away.
        fd = waiting.detach()
        os.dup2(fd, 3, inheritable=False)
        if fd != 3:
            os.close(fd)
        sc.close_from(4)
        waiting = socket.socket(fileno=3)
        null = os.open("/dev/null", os.O_RDONLY)
        message, fds = jail.receive(waiting)
        if message is None:
            os._exit(0)  # the spawner is gone
        log_fd, exec_w = fds
        os.dup2(null, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.chdir(message["cwd"])
        argv, env = list(message["argv"]), dict(message["env"])
        if not zygote.accepts(argv):
            raise ValueError(f"not a Python runtime on {sys.executable}: {argv}")
        sc.show_command(argv, env)
        sc.close_from(3)  # what the exec would close, the exec-status pipe among them
        zygote.become(argv, env)
    except OSError as exc:
        _report(exec_w, {"errno": exc.errno, "strerror": exc.strerror, "filename": exc.filename})
    except BaseException as exc:
        _report(exec_w, {"error": f"spawner: {type(exc).__name__}: {exc}"})
    os._exit(127)


def _report(fd: int, details: Mapping[str, Any]) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, json.dumps(details).encode())


def serve(control: socket.socket) -> None:
    from lamina.runtimes.python import zygote

    zygote.preload()
    # Children are forks of this process: keep the collector from writing to (and so
    # copying) the pages of every object that exists now.
    gc.freeze()
    spawner = Spawner(control)
    try:
        spawner.serve()
    finally:
        spawner.kill_all()


if __name__ == "__main__":
    # Run as a script with -I -S: make the `lamina` package importable from its location.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    serve(socket.socket(fileno=int(sys.argv[1])))
