"""Lamina's runtime for `runtime: python3.x` functions: see bootstrap.py for the contract."""

from __future__ import annotations

from pathlib import Path

BOOTSTRAP_PATH = Path(__file__).with_name("bootstrap.py")
# What bootstrap.py loads; a zygote would import it, preload, fork and call its main().
RUNTIME_PATH = Path(__file__).with_name("lamina_python_runtime.py")


def bootstrap_command(python: str, opt_root: str | Path = "/opt") -> list[str]:
    """The argv that starts the runtime; run it with cwd = the task root.

    -I keeps the platform's PYTHON* variables out, -S keeps the platform's site-packages out;
    bootstrap.py builds sys.path itself (task root, PYTHONPATH, the layers, the stdlib).
    """
    return [python, "-I", "-S", str(BOOTSTRAP_PATH), str(opt_root)]
