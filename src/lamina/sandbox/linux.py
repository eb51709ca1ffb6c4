"""The Linux sandbox driver: every execution environment in its own namespaces and cgroup.

Sandboxes are prepared ahead of time (see jail.py): a *seed* is a process already in its
cgroup slot, its namespaces and its pivoted, read-only file system, waiting for a
function. Starting an environment takes a ready seed, sets the slot's limits, hands the
seed the function's code and layers as mount trees (open_tree) and its remapped argv and
environment, and waits until the runtime has been exec'd. The pool refills in the
background.

The runtime is the sandbox's pid 1: when it dies, the kernel kills every process the
function started in its pid namespace. The nursery reaps it and reports its wait status on
the seed's control socket; the socket's end of stream means the environment is gone. A
pidfd makes the kill race-free.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
from collections import deque
from pathlib import Path
from typing import Any

from lamina.core.ports import ExecFailed, SandboxSpec
from lamina.runtimes.python import zygote_command
from lamina.sandbox import cgroups, jail, nursery, rootfs
from lamina.sandbox import syscalls as sc
from lamina.sandbox.aio import read_all
from lamina.sandbox.remap import OPT, TASK, remap
from lamina.sandbox.seed import SandboxError, Seed

__all__ = ["LinuxProcess", "LinuxSandboxDriver", "SandboxError", "build"]

log = logging.getLogger("lamina.sandbox")

POOL_SIZE = 2  # seeds kept ready at first: a burst beyond waits ~10 ms per extra seed
MAX_POOL = 16
REFILL_DELAY_S = 0.05
SHRINK_AFTER_S = 60.0
START_TIMEOUT_S = 30.0  # a burst of a thousand starts waits for as many new seeds
RELEASE_TRIES = 100
RO = sc.MOUNT_ATTR_RDONLY | sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NODEV
RW = sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NODEV


class LinuxProcess:
    """A started execution environment (the SandboxProcess port)."""

    __slots__ = ("_exited", "_limit_mb", "_peak_mb", "_seed")

    def __init__(self, seed: Seed, memory_mb: int) -> None:
        self._seed = seed
        self._limit_mb = memory_mb
        self._peak_mb = 0
        self._exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if seed.gone.done():
            self._on_gone()  # a runtime that exited at once
        else:
            seed.on_gone.append(self._on_gone)

    def __repr__(self) -> str:
        return f"<LinuxProcess pid={self.pid} {self._seed.slot.name} returncode={self.returncode}>"

    @property
    def pid(self) -> int:
        return self._seed.pid

    @property
    def returncode(self) -> int | None:
        return self._exited.result() if self._exited.done() else None

    def _on_gone(self) -> None:
        self._peak_mb = self.memory_used_mb()
        status = self._seed.status
        # No status: pid 1 itself was killed (a timeout, a stop, the OOM killer).
        code = os.waitstatus_to_exitcode(status) if status is not None else -signal.SIGKILL
        if not self._exited.done():
            self._exited.set_result(code)

    async def wait_exit(self) -> int:
        return await asyncio.shield(self._exited)

    def kill(self) -> None:
        self._seed.kill()

    def memory_used_mb(self) -> int:
        if self._exited.done():
            return self._peak_mb
        peak = (self._seed.slot.peak_bytes() + (1 << 20) - 1) >> 20
        self._peak_mb = max(self._peak_mb, min(peak, self._limit_mb))
        return self._peak_mb


class LinuxSandboxDriver:
    name = "linux"

    def __init__(self, config: dict[str, Any], tree: cgroups.Tree, pool_size: int = POOL_SIZE):
        self._config = config
        self._tree = tree
        self._pool_size = pool_size
        self._target = pool_size  # grows with bursts, back to pool_size after a quiet while
        self._nursery: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._ready: deque[Seed] = deque()
        self._preparing: set[Seed] = set()
        self._free: list[cgroups.Slot] = []
        self._refill_at: asyncio.TimerHandle | None = None
        self._shrink_at: asyncio.TimerHandle | None = None
        self.started = 0

    def __repr__(self) -> str:
        return (
            f"<LinuxSandboxDriver {self._tree.layout.version} ready={len(self._ready)} "
            f"preparing={len(self._preparing)} started={self.started}>"
        )

    def statistics(self) -> dict[str, object]:
        return {
            "driver": self.name,
            "cgroup": self._tree.layout.version,
            "seeds_ready": len(self._ready),
            "seeds_preparing": len(self._preparing),
            "free_slots": len(self._free),
            "started": self.started,
        }

    def remaps_paths(self) -> bool:
        return True

    # the seed pool

    def warm_soon(self) -> None:
        """Fill the pool as soon as the event loop runs, so the first cold start finds it."""
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().call_soon(self.warm)

    def warm(self) -> None:
        """Start the nursery and fill the pool (also done by the first start)."""
        if self._control is None:
            self._spawn_nursery()
        self._refill()

    def _spawn_nursery(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        argv, env = zygote_command(nursery.__file__, theirs.fileno())
        self._nursery = subprocess.Popen(
            argv,
            pass_fds=[theirs.fileno()],
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C at the terminal is Lamina's to handle
        )
        theirs.close()
        self._control = ours
        jail.send(ours, self._config)

    def _refill(self) -> None:
        self._refill_at = None
        while len(self._ready) + len(self._preparing) < self._target:
            self._prepare()

    def _refill_soon(self) -> None:
        # Not on the cold start's path: the runtime just started needs the CPU more.
        loop = asyncio.get_running_loop()
        if self._refill_at is None:
            self._refill_at = loop.call_later(REFILL_DELAY_S, self._refill)
        if self._target > self._pool_size and self._shrink_at is None:
            self._shrink_at = loop.call_later(SHRINK_AFTER_S, self._shrink)

    def _shrink(self) -> None:
        """A quiet while after a burst: keep fewer seeds (those beyond stay until used)."""
        self._shrink_at = None
        self._target = max(self._pool_size, self._target // 2)
        if self._target > self._pool_size:
            self._shrink_at = asyncio.get_running_loop().call_later(SHRINK_AFTER_S, self._shrink)

    def _prepare(self, urgent: bool = False) -> Seed:
        assert self._control is not None
        slot = self._free.pop() if self._free else self._tree.new_slot()
        if not urgent:
            slot.lower_priority()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            message = {"op": "seed", "procs": slot.procs_files, "spare": not urgent}
            jail.send(self._control, message, [theirs.fileno()])
        finally:
            theirs.close()
        seed = Seed(ours, slot)
        self._preparing.add(seed)
        seed.ready.add_done_callback(lambda _: self._on_prepared(seed))
        seed.gone.add_done_callback(lambda _: self._on_gone(seed))
        return seed

    def _on_prepared(self, seed: Seed) -> None:
        self._preparing.discard(seed)
        if seed.ready.exception() is None and not seed.reserved:
            self._ready.append(seed)

    def _on_gone(self, seed: Seed) -> None:
        self._preparing.discard(seed)
        if seed in self._ready:
            self._ready.remove(seed)
        for callback in seed.on_gone:
            callback()
        self.release(seed)

    async def _take(self) -> Seed:
        if self._control is None:
            self._spawn_nursery()
        seed = self._ready.popleft() if self._ready else None
        if seed is None:
            # A burst drained the pool: keep more ready from now on (up to MAX_POOL).
            self._target = min(MAX_POOL, self._target + 1)
            seed = self._prepare(urgent=True)
            seed.reserved = True
            self._preparing.discard(seed)  # not a spare: the pool still wants its own
            try:
                await asyncio.wait_for(asyncio.shield(seed.ready), START_TIMEOUT_S)
            except TimeoutError:
                seed.kill()
                raise SandboxError(f"no sandbox was ready within {START_TIMEOUT_S:.0f} s") from None
        self._refill_soon()
        return seed

    def release(self, seed: Seed) -> None:
        """Recycle a dead seed's cgroup slot once nothing runs in it."""
        seed.close()
        asyncio.get_running_loop().call_soon(self._recycle, seed.slot, RELEASE_TRIES)

    def _recycle(self, slot: cgroups.Slot, tries: int) -> None:
        if slot.is_empty():
            if slot.reusable:
                self._free.append(slot)
            else:
                slot.remove()
            return
        slot.kill()
        if tries > 0:
            asyncio.get_running_loop().call_later(0.02, self._recycle, slot, tries - 1)
        else:
            log.warning("sandbox: %s still has processes; leaving it", slot)

    def close(self) -> None:
        """Kill the spare seeds and let the nursery go; it removes the cgroups once empty."""
        for timer in (self._refill_at, self._shrink_at):
            if timer is not None:
                timer.cancel()
        for seed in [*self._ready, *self._preparing]:
            seed.kill()
        if self._control is not None:
            self._control.close()
            self._control = None

    # starting an environment

    async def start(self, spec: SandboxSpec) -> LinuxProcess:
        seed = await self._take()
        try:
            return await self._start(seed, spec)
        except ExecFailed:
            seed.kill()
            raise
        except OSError as exc:
            # Not the function's entrypoint but the sandbox's own set-up: a platform fault.
            seed.kill()
            raise SandboxError(f"starting a sandbox: {exc}") from exc
        except BaseException:
            seed.kill()
            raise

    async def _start(self, seed: Seed, spec: SandboxSpec) -> LinuxProcess:
        mapped = remap(spec)
        seed.slot.configure(cgroups.limits_for(spec.memory_mb))
        seed.api_address = mapped.env.get("AWS_LAMBDA_RUNTIME_API", "")
        exec_r, exec_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        fds = [spec.log_fd, exec_w]
        mounts: list[list[object]] = []
        try:
            for source, target, attributes in self._trees(spec):
                fds.append(sc.open_tree(str(source), attributes))
                mounts.append([target, len(fds) - 1])
            seed.send(
                {
                    "argv": list(mapped.argv),
                    "env": mapped.env,
                    "cwd": mapped.cwd,
                    "mounts": mounts,
                    "network": mapped.network,
                    "api_port": _port(seed.api_address),
                },
                fds,
            )
        finally:
            for fd in fds[1:]:
                os.close(fd)
        try:
            report = await asyncio.wait_for(read_all(exec_r), START_TIMEOUT_S)
        finally:
            os.close(exec_r)
        if report:
            raise _failure(report)
        self.started += 1
        return LinuxProcess(seed, spec.memory_mb)

    def _trees(self, spec: SandboxSpec) -> list[tuple[Path, str, int]]:
        trees = [(spec.task_root, TASK, RO)]
        if spec.opt_root is not None:
            trees.append((spec.opt_root, OPT, RO))
        if spec.socket_dir is not None:
            # The one directory the function shares with Lamina read-write (php-fpm's socket
            # and configuration), at the same path on both sides.
            os.chown(spec.socket_dir, int(self._config["uid"]), int(self._config["gid"]))
            trees.append((spec.socket_dir, str(spec.socket_dir), RW))
        return trees


def _port(address: str) -> int:
    _, _, port = address.rpartition(":")
    return int(port) if port.isdigit() else 0


def _failure(report: bytes) -> Exception:
    details = json.loads(report)
    if "errno" in details:
        return ExecFailed(int(details["errno"]), details["strerror"], details["filename"])
    return SandboxError(str(details.get("error", "the sandbox failed")).splitlines()[-1])


def staging_root(home: Path) -> Path:
    """An empty directory each seed mounts its new root over (in its own namespace)."""
    path = home / "run" / "sandbox-root"
    path.mkdir(parents=True, exist_ok=True)
    return path


def build(home: Path, layout: cgroups.Layout) -> LinuxSandboxDriver:
    cgroups.remove_stale(layout)
    tree = cgroups.Tree(layout, os.getpid())
    tree.create()
    described = {"version": layout.version, "dirs": dict(layout.dirs), "name": tree.name}
    config = rootfs.jail_config(home, staging_root(home), described)
    return LinuxSandboxDriver(config, tree)
