"""Lamina's runtime for `runtime: python3.x` functions: see bootstrap.py for the contract."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

BOOTSTRAP_PATH = Path(__file__).with_name("bootstrap.py")
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
