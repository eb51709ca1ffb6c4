"""Lamina's runtime for `runtime: python3.x` functions: see bootstrap.py for the contract."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

BOOTSTRAP_PATH = Path(__file__).with_name("bootstrap.py")
LANG = "en_US.UTF-8"  # every function's locale (launch.py); an interpreter reads it at start
# What bootstrap.py loads; a zygote (zygote.py) imports it, forks and calls its main().
RUNTIME_PATH = Path(__file__).with_name("lamina_python_runtime.py")


def bootstrap_command(python: str, opt_root: str | Path = "/opt") -> list[str]:
    """The argv that starts the runtime; run it with cwd = the task root.

    -I keeps the platform's PYTHON* variables out, -S keeps the platform's site-packages out;
    bootstrap.py builds sys.path itself (task root, PYTHONPATH, the layers, the stdlib).
    """
    return [python, "-I", "-S", str(BOOTSTRAP_PATH), str(opt_root)]


@functools.lru_cache(maxsize=32)
def python_for(runtime: str) -> str:
    """The interpreter for `python3.x`: the system's build of that version when there is one
    (a distribution build starts faster than most others), else Lamina's own interpreter.
    Looked up once per process (it is on every cold start's path)."""
    wanted = runtime.removeprefix("python")
    for folder in ("/usr/bin", "/usr/local/bin"):
        candidate = os.path.realpath(Path(folder) / f"python{wanted}")
        if _is_executable_binary(candidate):
            return candidate
    # Never a pyenv shim or other wrapper script: the real file behind this interpreter.
    return os.path.realpath(sys.executable)


def _is_executable_binary(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == b"\x7fELF" and os.access(path, os.X_OK)
    except OSError:
        return False


def zygote_command(script: str, fd: int) -> tuple[list[str], dict[str, str]]:
    """argv and environment of a zygote (the sandbox nursery, the plain spawner): the
    interpreter `python3.<Lamina's minor>` functions run on, with their locale, so that a
    fork of it can become their runtime (zygote.py)."""
    return [zygote_python(), "-I", "-S", script, str(fd)], {"LANG": LANG}


def zygote_python() -> str:
    return python_for(f"python{sys.version_info[0]}.{sys.version_info[1]}")
