"""The real paths in a runtime's argv and environment become /var/task, /opt and /tmp."""

from __future__ import annotations

from pathlib import Path

from lamina.core.ports import SandboxSpec
from lamina.sandbox.remap import NETWORK_VARIABLE, Remapper, is_inside, remap

HOME = "/srv/lamina"
TASK = f"{HOME}/bundles/ab12/code"
OPT = f"{HOME}/bundles/opt/cd34"
TMP = f"{HOME}/run/0f0f/tmp"


def spec(env: dict[str, str], argv: tuple[str, ...] = ("python",), **kw: object) -> SandboxSpec:
    values: dict[str, object] = {
        "argv": argv,
        "env": env,
        "cwd": Path(TASK),
        "task_root": Path(TASK),
        "opt_root": Path(OPT),
        "tmp_dir": Path(TMP),
        "memory_mb": 128,
        "log_fd": 1,
        **kw,
    }
    return SandboxSpec(**values)  # type: ignore[arg-type]


def test_the_launchers_variables_get_lambdas_paths() -> None:
    env = {
        "LAMBDA_TASK_ROOT": TASK,
        "PATH": f"/usr/local/bin:/usr/bin/:/bin:{OPT}/bin",
        "LD_LIBRARY_PATH": f"/lib64:/usr/lib64:/rt:/rt/lib:{TASK}:{TASK}/lib:{OPT}/lib",
        "TMPDIR": TMP,
        "PHP_INI_SCAN_DIR": f":{OPT}/bref/etc/php/conf.d:{TASK}/php/conf.d",
        "GREETING": "hello",
    }
    mapped = remap(spec(env, ("/usr/bin/python3.11", "-I", "-S", "/rt/bootstrap.py", OPT)))
    assert mapped.env == {
        "LAMBDA_TASK_ROOT": "/var/task",
        "PATH": "/usr/local/bin:/usr/bin/:/bin:/opt/bin",
        "LD_LIBRARY_PATH": "/lib64:/usr/lib64:/rt:/rt/lib:/var/task:/var/task/lib:/opt/lib",
        "TMPDIR": "/tmp",
        "PHP_INI_SCAN_DIR": ":/opt/bref/etc/php/conf.d:/var/task/php/conf.d",
        "GREETING": "hello",
    }
    assert mapped.argv == ("/usr/bin/python3.11", "-I", "-S", "/rt/bootstrap.py", "/opt")
    assert mapped.cwd == "/var/task"


def test_a_provided_bootstrap_is_started_from_var_task() -> None:
    assert remap(spec({}, (f"{TASK}/bootstrap",))).argv == ("/var/task/bootstrap",)
    assert remap(spec({}, (f"{OPT}/bootstrap",))).argv == ("/opt/bootstrap",)


def test_only_whole_path_components_are_rewritten() -> None:
    rewrite = Remapper({"/a/code": "/var/task"})
    assert rewrite("/a/code") == "/var/task"
    assert rewrite("/a/code/x:/a/code") == "/var/task/x:/var/task"
    assert rewrite("--root=/a/code/lib") == "--root=/var/task/lib"
    assert rewrite("/a/codebase") == "/a/codebase"  # another directory
    assert rewrite("/b/a/code") == "/b/a/code"  # not a prefix
    assert rewrite("see /a/code now") == "see /var/task now"


def test_the_longest_real_path_wins() -> None:
    rewrite = Remapper({"/h/run": "/x", "/h/run/tmp": "/tmp"})
    assert rewrite("/h/run/tmp/f") == "/tmp/f"
    assert rewrite("/h/run/other") == "/x/other"


def test_without_layers_opt_stays_opt_and_nothing_else_moves() -> None:
    mapped = remap(spec({"PATH": "/usr/bin:/opt/bin"}, opt_root=None))
    assert mapped.env["PATH"] == "/usr/bin:/opt/bin"


def test_the_network_marker_is_read_and_never_passed_on() -> None:
    assert remap(spec({})).network == "shared"
    cut = remap(spec({NETWORK_VARIABLE: "none", "A": "1"}))
    assert cut.network == "none"
    assert cut.env == {"A": "1"}
    assert remap(spec({}, network="none")).network == "none"
    assert remap(spec({NETWORK_VARIABLE: "shared"})).network == "shared"


def test_is_inside() -> None:
    assert is_inside("/a/b/c", ["/a/b"])
    assert is_inside("/a/b", ["/a/b"])
    assert not is_inside("/a/bc", ["/a/b"])
    assert not is_inside("/a", ["/a/b"])


def test_the_temporary_directory_is_replaced_only_as_a_whole_path() -> None:
    from lamina.sandbox.remap import _replace_path

    real = "/h/run/ab/tmp"
    assert _replace_path(f"{real}:{real}/x y={real}", real, "/tmp") == "/tmp:/tmp/x y=/tmp"
    assert _replace_path(f"{real}x /a{real}", real, "/tmp") == f"{real}x /a{real}"
