"""The script the platform runs: `<python> -I -S /path/to/bootstrap.py [OPT_ROOT]`.

It only loads lamina_python_runtime (see there for the contract) so that the runtime's code
comes from a cached .pyc: Python compiles a script it runs on every start.
"""

import os
import sys


def _load_runtime():
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    try:
        import lamina_python_runtime
    finally:
        # The runtime's directory must not stay on the user's import path.
        sys.path.remove(here)
    return lamina_python_runtime


if __name__ == "__main__":
    if sys.version_info < (3, 8):  # noqa: UP036 - this runs in the function's interpreter
        sys.exit(f"lamina's Python runtime needs Python >= 3.8, not {sys.version.split()[0]}")
    sys.exit(_load_runtime().main())
