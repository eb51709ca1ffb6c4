"""A forked zygote becomes the Python runtime as an exec of bootstrap.py would start it."""

from __future__ import annotations

import json
import os
import signal
import sys
import types
from pathlib import Path

import pytest

from lamina.runtimes.python import bootstrap_command, zygote

OBSERVER = """
import json, os, signal, sys
json_preloaded = "json" in sys.modules
with open(os.environ["OBSERVATIONS"], "w") as out:
    json.dump({
        "argv": sys.argv,
        "path0": sys.path[:2],
        "lamina_modules": [m for m in sys.modules if m == "lamina" or m.startswith("lamina.")],
        "main_file": sys.modules["__main__"].__file__,
        "environ": dict(os.environ),
        "sigpipe_ignored": signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN,
        "sigint_default": signal.getsignal(signal.SIGINT) is signal.default_int_handler,
        "sigterm_default": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
        "cwd": os.getcwd(),
        "json_preloaded": json_preloaded,
    }, out)

def handler(event, context):
    return event
"""


def test_accepts_only_bootstrap_on_this_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    me = os.path.realpath(sys.executable)
    monkeypatch.delitem(sys.modules, zygote.MODULE, raising=False)
    assert not zygote.accepts(bootstrap_command(me, "/opt"))  # not preloaded
    monkeypatch.setitem(sys.modules, zygote.MODULE, types.ModuleType(zygote.MODULE))
    assert zygote.accepts(bootstrap_command(me, "/opt"))
    assert zygote.accepts([sys.executable, "-I", "-S", zygote.BOOTSTRAP])
    assert not zygote.accepts(bootstrap_command("/nonexistent/python3.99", "/opt"))
    assert not zygote.accepts([me, "-I", "-S", "/elsewhere/bootstrap.py", "/opt"])
    assert not zygote.accepts(["/var/task/bootstrap"])


def test_a_fork_becomes_the_runtime_as_an_exec_would(tmp_path: Path) -> None:
    task = tmp_path / "task"
    task.mkdir()
    (task / "app.py").write_text(OBSERVER)
    observations = tmp_path / "seen.json"
    argv = bootstrap_command(os.path.realpath(sys.executable), "/opt")
    env = {
        "_HANDLER": "app.handler",
        "LAMBDA_TASK_ROOT": str(task),
        "PYTHONPATH": zygote.RUNTIME_DIR,
        # Nothing listens there: after init, the runtime's first `next` fails and it exits 1.
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9",
        "OBSERVATIONS": str(observations),
        "TZ": ":UTC",
    }
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns to pytest
        try:
            os.close(read_fd)
            signal.signal(signal.SIGTERM, lambda *_: None)  # the zygote's own handler
            zygote.preload()
            zygote.prepare()
            os.chdir(task)
            os.dup2(write_fd, 1)
            os.dup2(write_fd, 2)
            os.closerange(3, 256)
            assert zygote.accepts(argv)
            zygote.become(argv, env)
        finally:
            os._exit(99)
    os.close(write_fd)
    output = b""
    while chunk := os.read(read_fd, 65536):
        output += chunk
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 1, output
    assert b"Failed to get next invocation" in output
    seen = json.loads(observations.read_text())
    assert seen["argv"] == [zygote.BOOTSTRAP]
    assert seen["path0"] == [str(task), zygote.RUNTIME_DIR]
    assert seen["lamina_modules"] == []
    assert seen["main_file"] == zygote.BOOTSTRAP
    assert seen["environ"] == env
    assert seen["sigpipe_ignored"] and seen["sigint_default"] and seen["sigterm_default"]
    assert seen["cwd"] == str(task)
    assert seen["json_preloaded"]
