"""Starting the Python runtime without starting an interpreter: what a zygote does.

A `python3.x` function's environment runs `<python> -I -S bootstrap.py OPT_ROOT` (see
bootstrap.py). Starting that interpreter and loading the runtime is most of a cold start
(~10-30 ms here). A process that is already that interpreter and has imported the runtime
(a *zygote*: Lamina's sandbox nursery and its plain-process spawner are both) forks, and
the child `prepare()`s ahead of time and `become()`s the command instead of exec'ing it:
together they do to the state user code can observe what execve and the interpreter's
start-up would have done (environment, argv, sys.path, signal dispositions, modules, time
zone) and call the runtime's `main()`. The child costs a fork (~1 ms) and shares the
zygote's memory pages until it writes them.

What differs from an exec'd runtime: the modules preloaded here (the runtime, `json`,
`importlib` and what they import) are already in `sys.modules`, and /proc/self/cmdline
names the zygote's script. Only a command that names this very interpreter is taken over
(`accepts`); any other Python version is exec'd as before.

Stdlib only, Python >= 3.8: it runs in the zygote, which never imports Lamina's services.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import types
from collections.abc import Callable, Sequence
from typing import NoReturn

RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))
BOOTSTRAP = os.path.join(RUNTIME_DIR, "bootstrap.py")
MODULE = "lamina_python_runtime"
# What the runtime's first invocation imports anyway; loading it here is shared memory.
PRELOAD = ("json", "importlib", "io")
_EXECUTABLE = os.path.realpath(sys.executable)
# The signals a zygote may handle (SIGCHLD, to reap) or its host may have set.
_HOST_SIGNALS = (
    signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
    signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM, signal.SIGPIPE, signal.SIGXFSZ,
    signal.SIGWINCH,
)  # fmt: skip
# The interpreter's own import path (the stdlib), as `python -I -S` starts with it.
_STDLIB_PATH = [p for p in sys.path if p and p.startswith((sys.base_prefix, sys.base_exec_prefix))]


def preload() -> None:
    """Import the runtime once, in the zygote, before it starts forking."""
    sys.path.insert(0, RUNTIME_DIR)
    try:
        __import__(MODULE)
    finally:
        sys.path.remove(RUNTIME_DIR)
    for name in PRELOAD:
        __import__(name)


def accepts(argv: list[str]) -> bool:
    """Whether this process, a preloaded zygote, can become `argv`."""
    return MODULE in sys.modules and runs_bootstrap(argv, _EXECUTABLE)


def runs_bootstrap(argv: Sequence[str], python: str) -> bool:
    """Whether `argv` is bootstrap.py's command on `python` (see bootstrap_command)."""
    return (
        len(argv) in (4, 5)
        and list(argv[1:3]) == ["-I", "-S"]
        and argv[3] == BOOTSTRAP
        and os.path.realpath(argv[0]) == os.path.realpath(python)
    )


def prepare(rehearse: bool = True) -> None:
    """In a fork that may become the runtime, everything that does not depend on the
    function, done ahead of time (writing to the zygote's pages after a fork copies them,
    ~1 ms here). An exec later undoes all of it, so the fork may still exec another runtime.
    `rehearse`: also run what every start runs (~2 ms less on the start, ~3 ms more here:
    worth it when the fork waits for a start, not when a burst waits for the fork)."""
    # execve resets every handled signal to its default. Zygotes handle only a few (going
    # through all 64 costs ~0.7 ms after a fork).
    signal.set_wakeup_fd(-1)
    for number in _HOST_SIGNALS:
        if signal.getsignal(number) not in (signal.SIG_DFL, None):
            with contextlib.suppress(OSError, ValueError):
                signal.signal(number, signal.SIG_DFL)
    os.environ.clear()
    sys.path[:] = [RUNTIME_DIR, *_STDLIB_PATH]
    sys.path_importer_cache.clear()
    for name in [n for n in sys.modules if n == "lamina" or n.startswith("lamina.")]:
        del sys.modules[name]
    main = types.ModuleType("__main__")
    main.__file__ = BOOTSTRAP
    sys.modules["__main__"] = main
    if rehearse:
        _rehearse()


def _rehearse() -> None:
    """Run, on nothing, the code every start runs (finding and compiling a handler module,
    JSON both ways): the zygote pages it writes are copied now, not on the cold start. This
    took a handler's import from ~2.3 to ~0.6 ms of CPU here."""
    import importlib.machinery
    import json

    compile(_REHEARSAL_SOURCE, "/var/task/handler.py", "exec")
    importlib.machinery.PathFinder.find_spec("lamina_rehearsal", ["/"])
    sys.path_importer_cache.clear()
    json.loads(json.dumps({"statusCode": 200, "body": "ok", "list": [1, 2.5, None, True]}))


_REHEARSAL_SOURCE = """
import json


def handler(event, context):
    return {"statusCode": 200, "body": json.dumps(event)}
"""


def become(argv: list[str], env: dict[str, str]) -> NoReturn:
    """Turn this prepared fork into the runtime `argv` would have started.

    The caller has done the rest of what a start does: descriptors 0-2 in place and every
    other one closed, the working directory, the user and the sandbox.
    """
    # What the interpreter sets when it starts.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    os.environ.update(env)
    import time

    time.tzset()  # the interpreter reads TZ when it starts
    sys.argv[:] = argv[3:]
    sys.orig_argv = list(argv)
    os._exit(_run(sys.modules[MODULE].main))


def _run(main: Callable[[], object]) -> int:
    """Call main() and end as the interpreter would: exit code, threads, atexit, stdio."""
    try:
        status = main()
    except SystemExit as exc:
        status = exc.code
    except BaseException:
        import traceback

        traceback.print_exc()
        status = 1
    code = _exit_code(status)
    threading = sys.modules.get("threading")
    if threading is not None:
        with contextlib.suppress(Exception):
            threading._shutdown()  # waits for non-daemon threads
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    return code


def _exit_code(status: object) -> int:
    if status is None:
        return 0
    if isinstance(status, int):
        return status & 0xFF
    print(status, file=sys.stderr)
    return 1
