"""Lamina's side of one prepared sandbox (a seed, see jail.py): its control socket, its
pid 1 and its cgroup slot.

Messages arrive on the socket as the seed is prepared (its pid and a pidfd, then "ready"),
started (with `network: none`, the listening socket for the Runtime API) and reaped (its
wait status, from the nursery). The socket's end of stream means the sandbox is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable
from typing import Any

from lamina.sandbox import cgroups, jail
from lamina.sandbox.forward import Forwarder

log = logging.getLogger("lamina.sandbox")


class SandboxError(Exception):
    """The sandbox itself failed (a platform fault, not the function's)."""


class Seed:
    """Lamina's side of one prepared sandbox: its control socket, pid 1 and cgroup slot."""

    def __init__(self, ctl: socket.socket, slot: cgroups.Slot) -> None:
        self.ctl = ctl
        self.slot = slot
        self.pid = 0  # the sandbox's pid 1 (the runtime, once started), as the host sees it
        self.pidfd = -1
        self.status: int | None = None  # its wait status, reported by the nursery
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = loop.create_future()
        self.gone: asyncio.Future[None] = loop.create_future()
        self.forwarder: Forwarder | None = None
        self.api_address = ""
        self.reserved = False  # taken by a start() while still preparing
        self.on_gone: list[Callable[[], None]] = []
        self._saw_ready = False
        ctl.setblocking(False)
        loop.add_reader(ctl.fileno(), self._on_message)

    def __repr__(self) -> str:
        state = "gone" if self.gone.done() else "ready" if self.ready.done() else "preparing"
        return f"<Seed pid={self.pid} {self.slot.name} {state}>"

    def _on_message(self) -> None:
        while True:
            try:
                message, fds = jail.receive(self.ctl)
            except BlockingIOError:
                return
            except OSError:
                message, fds = None, []
            if message is None:
                asyncio.get_running_loop().remove_reader(self.ctl.fileno())
                self._ended()
                return
            self._handle(message, fds)

    def _handle(self, message: dict[str, Any], fds: list[int]) -> None:
        if "pid" in message:
            self.pid, self.pidfd = int(message["pid"]), fds[0]
        elif message.get("ready"):
            self._saw_ready = True
        elif "net" in message:
            self.forwarder = Forwarder(socket.socket(fileno=fds[0]), self.api_address)
        elif "exit" in message:
            self.status = int(message["exit"])
        elif "error" in message:
            log.error("sandbox: %s", message["error"])
            self._fail(str(message["error"]).splitlines()[-1])
        if self._saw_ready and self.pid and not self.ready.done():
            self.ready.set_result(None)

    def _fail(self, reason: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(SandboxError(reason))
            self.ready.exception()  # retrieved here: a failed spare seed is not an error

    def _ended(self) -> None:
        """Every end of the control socket but ours is closed: the runtime has exec'd and
        exited, and the nursery, which reaped the sandbox's pid 1, has reported on it."""
        if self.status is None:
            # Nobody reported (the nursery itself died): leave nothing running behind.
            self.kill()
        self._fail("the sandbox ended before it was ready")
        if not self.gone.done():
            self.gone.set_result(None)

    def send(self, message: dict[str, Any], fds: list[int]) -> None:
        jail.send(self.ctl, message, fds)

    def kill(self) -> None:
        if self.gone.done():
            return  # its slot may already hold another seed
        if self.pidfd >= 0:
            with contextlib.suppress(ProcessLookupError, OSError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        self.slot.kill()

    def close(self) -> None:
        if self.forwarder is not None:
            self.forwarder.close()
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1
        self.ctl.close()
