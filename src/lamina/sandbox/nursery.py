"""The nursery: a small root helper process that forks sandbox seeds for the Linux driver.

Lamina's own process is large and may run threads, so it never forks sandboxes itself. It
starts this program once (`python -I -S nursery.py FD`), sends it the jail configuration,
then asks it for seeds; each request carries the seed's control socket, which the seed
uses to talk to Lamina directly (see jail.py). The nursery is the seeds' subreaper: it
reaps each sandbox's pid 1 and sends its wait status on the seed's control socket, then
closes its copy, so the socket's end of stream tells Lamina everything is gone. When
Lamina's end of the nursery's socket closes, however Lamina ended, the nursery kills every
process left in Lamina's cgroups, removes them, and exits.

    python -I -S nursery.py --probe   reads a configuration on stdin, starts one sandbox
                                      running `probe_argv`, and exits 0 if it worked.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import socket
import struct
import sys
from collections.abc import Mapping
from typing import Any


class Nursery:
    def __init__(self, control: socket.socket, config: Mapping[str, Any]) -> None:
        self.control = control
        self.config = config
        self.telling: dict[int, socket.socket] = {}  # pipe from S -> the seed's socket
        self.seeds: dict[int, socket.socket] = {}  # pid 1 of a sandbox -> its socket

    def serve(self) -> None:
        from lamina.sandbox import jail

        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        while True:
            watched = [self.control.fileno(), wake_r, *self.telling]
            readable = jail.readable(watched)
            # Pids first: a sandbox's pid 1 is only ours to reap after S told us its pid.
            for fd in readable:
                if fd in self.telling:
                    self._learn(fd)
            if wake_r in readable:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 4096)
                self._reap()
            if self.control.fileno() in readable:
                message, fds = jail.receive(self.control)
                if message is None:
                    return
                if message.get("op") == "seed":
                    self._fork_seed(message, fds[0])
                for fd in fds:
                    os.close(fd)

    def _fork_seed(self, message: Mapping[str, Any], ctl_fd: int) -> None:
        from lamina.sandbox import jail
        from lamina.sandbox import syscalls as sc

        ctl = socket.socket(fileno=os.dup(ctl_fd))
        tell_r, tell_w = os.pipe2(os.O_CLOEXEC)
        go_r, go_w = os.pipe2(os.O_CLOEXEC)
        try:
            child = os.fork()
        except OSError as exc:
            with contextlib.suppress(OSError):
                jail.send(ctl, {"error": f"nursery: fork: {exc}"})
            for fd in (tell_r, tell_w, go_r, go_w):
                os.close(fd)
            ctl.close()
            return
        if child == 0:
            # Only its own descriptors: a seed holding another's socket would keep that
            # socket's end of stream, Lamina's signal that an environment is gone, away.
            sc.close_all_but(0, 1, 2, ctl.fileno(), tell_w, go_r)
            jail.seed(self.config, ctl, tell_w, go_r, message.get("spare", True))
        os.close(tell_w)
        os.close(go_r)
        try:
            for path in message["procs"]:
                _write(path, str(child))  # S, and so everything it starts, into the slot
        except OSError as exc:
            with contextlib.suppress(OSError):
                jail.send(ctl, {"error": f"nursery: joining {path}: {exc}"})
            os.kill(child, signal.SIGKILL)
        else:
            os.write(go_w, b"1")
        finally:
            os.close(go_w)
        self.telling[tell_r] = ctl

    def _learn(self, fd: int) -> None:
        data = os.read(fd, 4)
        os.close(fd)
        ctl = self.telling.pop(fd)
        if len(data) == 4:
            self.seeds[struct.unpack("=i", data)[0]] = ctl
        else:
            ctl.close()  # S failed before forking; it said why on the socket

    def _reap(self) -> None:
        from lamina.sandbox import jail

        jail.reap(self.seeds)

    def clean_up(self) -> None:
        from lamina.sandbox import cgroups

        tree = self.config.get("cgroups")
        if tree:
            layout = cgroups.Layout(tree["version"], tree["dirs"])
            cgroups.remove_tree(layout, str(tree["name"]))


def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def serve(control: socket.socket) -> None:
    from lamina.runtimes.python import zygote
    from lamina.sandbox import jail
    from lamina.sandbox import syscalls as sc

    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    jail.prepare_nursery()
    config, _ = jail.receive(control)
    if config is None:
        return
    # Every seed is then a ready Python runtime for functions on this interpreter.
    zygote.preload()
    # Seeds are forks of this process: keep the collector from writing to (and so copying)
    # the pages of every object that exists now.
    gc.freeze()
    nursery = Nursery(control, config)
    try:
        nursery.serve()
    finally:
        nursery.clean_up()


def probe(config: Mapping[str, Any]) -> int:
    """Start one sandbox running config["probe_argv"]; its exit code, or 125 on failure."""
    from lamina.sandbox import jail
    from lamina.sandbox import syscalls as sc

    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    jail.prepare_nursery()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    tell_r, tell_w = os.pipe()
    go_r, go_w = os.pipe()
    os.write(go_w, b"1")  # no cgroup to join
    os.close(go_w)
    child = os.fork()
    if child == 0:
        ours.close()
        os.close(tell_r)
        jail.seed(config, theirs, tell_w, go_r)
    theirs.close()
    os.close(tell_w)
    os.close(go_r)
    status = 125
    try:
        while True:
            message, fds = jail.receive(ours)
            for fd in fds:
                os.close(fd)
            if message is None or "error" in message:
                print(message["error"] if message else "the sandbox vanished", file=sys.stderr)
                break
            if message.get("ready"):
                exec_r, exec_w = os.pipe2(os.O_CLOEXEC)
                start = {
                    "argv": config["probe_argv"],
                    "env": {"PATH": "/usr/bin:/bin"},
                    "cwd": "/",
                    "mounts": [],
                    "network": "shared",
                }
                jail.send(ours, start, [1, exec_w])
                os.close(exec_w)
                failure = os.read(exec_r, 65536)
                if failure:
                    print(failure.decode(errors="replace"), file=sys.stderr)
                    break
                pid = struct.unpack("=i", os.read(tell_r, 4))[0]
                os.waitpid(child, 0)
                _, raw = os.waitpid(pid, 0)
                status = os.waitstatus_to_exitcode(raw)
                break
    finally:
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, 0)[0] > 0:
                pass
    return status


def main(argv: list[str]) -> int:
    if argv[1:] == ["--probe"]:
        return probe(json.loads(sys.stdin.read()))
    serve(socket.socket(fileno=int(argv[1])))
    return 0


if __name__ == "__main__":
    # Run as a script with -I -S: make the `lamina` package importable from its location.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main(sys.argv))
