"""Sandbox drivers: the only code that spawns runtimes and touches namespaces and cgroups.

`default_driver(settings)` picks the driver `LAMINA_SANDBOX` asks for (`auto`: the Linux
driver where this machine allows it, else plain processes); `describe()` says, in a few
lines for `lamina up` and `lamina doctor`, which isolation is in force and what is off.

Imports stay inside the functions: the nursery (a `python -I -S` helper) imports modules of
this package and must not pay for the driver's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lamina.config import Settings
    from lamina.core.ports import SandboxDriver

MODES = ("auto", "linux", "plain")
OFF_WITHOUT_LINUX = (
    "own file system view (code, layers and /tmp are the host's; the data directory is readable)",
    "own /proc and pid namespace",
    "unprivileged user (functions run as Lamina's user)",
    "capability drop, no_new_privs and the seccomp filter",
    "memory limit, CPU share and process limit (only the timeout is enforced)",
)


class SandboxUnavailable(Exception):
    """LAMINA_SANDBOX=linux on a machine that cannot run the Linux sandbox."""


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"LAMINA_SANDBOX = {mode!r}: must be one of {', '.join(MODES)}")


def default_driver(settings: Settings) -> SandboxDriver:
    import logging

    from lamina.sandbox import detect, linux

    mode = settings.sandbox
    _check_mode(mode)
    if mode == "plain":
        return _plain()
    support = detect.support()
    if support.ok and support.layout is not None:
        try:
            driver = linux.build(settings.home, support.layout)
        except OSError as exc:
            if mode == "linux":
                raise SandboxUnavailable(f"LAMINA_SANDBOX=linux: {exc}") from exc
            logging.getLogger("lamina.sandbox").error("Linux sandbox unavailable: %s", exc)
            return _plain()
        driver.warm_soon()
        return driver
    if mode == "linux":
        reasons = "; ".join(support.problems)
        raise SandboxUnavailable(f"LAMINA_SANDBOX=linux, but this machine cannot: {reasons}")
    return _plain()


def _plain() -> SandboxDriver:
    from lamina.sandbox.plain import PlainSandboxDriver

    driver = PlainSandboxDriver()
    driver.warm_soon()
    return driver


def describe(mode: str | None = None) -> list[str]:
    """What `mode` (default: LAMINA_SANDBOX's) gives on this machine: the driver, the
    isolation in force, and what is off."""
    from lamina.config import Settings
    from lamina.sandbox import detect, rootfs

    mode = Settings.from_env().sandbox if mode is None else mode
    _check_mode(mode)
    if mode == "plain":
        head = "sandbox driver: plain processes (LAMINA_SANDBOX=plain): NO ISOLATION"
        return [head, *(f"  off: {item}" for item in OFF_WITHOUT_LINUX)]
    support = detect.support()
    if not support.ok or support.layout is None:
        head = "sandbox driver: plain processes: NO ISOLATION (the Linux sandbox needs root, "
        head += "namespaces and cgroups)"
        lines = [head, *(f"  why: {problem}" for problem in support.problems)]
        return lines + [f"  off: {item}" for item in OFF_WITHOUT_LINUX]
    return [
        "sandbox driver: linux (one sandbox per execution environment)",
        "  namespaces: mount, pid, ipc, uts; network shared (LAMINA_NETWORK=none per function)",
        "  files: read-only system, code read-only at /var/task, layers at /opt, private "
        f"/tmp (tmpfs, {rootfs.TMP_MB} MB); the data directory is not visible",
        f"  user: uid {rootfs.UID} ({rootfs.USER}), no capabilities, no_new_privs, seccomp filter",
        f"  limits (cgroup {support.layout.version}): memory = memorySize, CPU in proportion "
        "(1 vCPU at 1769 MB), 1024 processes, 1024 open files",
    ]
