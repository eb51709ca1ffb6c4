"""Hostile functions under the Linux sandbox: what they try, and that they cannot.

One server (LAMINA_SANDBOX=linux) serves the module. Each hostile handler reports what it
saw; the assertions are on that report and, from outside, on the host: the server's health,
its data directory, the processes and cgroups left behind.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.harness import LaminaServer, create_function, invoke, pid_alive, wait_until

from lamina.runtimes.python import bootstrap_command, python_for
from lamina.sandbox.rootfs import runtime_dirs

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.geteuid() != 0 or not os.path.isdir("/proc/self/ns"),
        reason="the Linux sandbox needs root (CI runs as root)",
    ),
]

PROBE = r"""
import ctypes, errno, json, os, socket, subprocess, time, urllib.request

libc = ctypes.CDLL(None, use_errno=True)


def attempt(call):
    try:
        return {"ok": True, "value": call()}
    except OSError as exc:
        return {"ok": False, "errno": exc.errno, "error": type(exc).__name__}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}


def read(path):
    with open(path, "rb") as f:
        return f.read().decode(errors="replace")


def write(path, text="x"):
    with open(path, "w") as f:
        f.write(text)
    return path


def syscall_errno(result):
    return 0 if result == 0 else ctypes.get_errno()


def status():
    lines = read("/proc/self/status").splitlines()
    return {k: v.strip() for k, v in (line.split(":", 1) for line in lines)}


def handler(event, context):
    action = event["action"]
    if action == "look":
        paths = event.get("paths", [])
        return {
            "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
            "cwd": os.getcwd(), "root": sorted(os.listdir("/")),
            "tmp": sorted(os.listdir("/tmp")), "task": sorted(os.listdir("/var/task")),
            "proc_pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
            "reads": {p: attempt(lambda p=p: read(p)[:200]) for p in paths},
            "lists": {p: attempt(lambda p=p: os.listdir(p)) for p in paths},
            "environ": {
                p: attempt(lambda p=p: read(f"/proc/{p}/environ"))
                for p in os.listdir("/proc") if p.isdigit()
            },
            "env_keys": sorted(os.environ),
            "cmdline": read("/proc/1/cmdline").split("\0")[:-1],
            "status": status(),
            "mountinfo": read("/proc/self/mountinfo"),
            "whoami": attempt(lambda: subprocess.run(
                ["whoami"], capture_output=True, text=True).stdout.strip()),
        }
    if action == "write":
        return {p: attempt(lambda p=p: write(p)) for p in event["paths"]}
    if action == "leave":
        write("/tmp/secret.txt", event["secret"])
        return "left"
    if action == "mount":
        libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
        os.makedirs("/tmp/m", exist_ok=True)
        return {
            "mount": syscall_errno(libc.mount(b"none", b"/tmp/m", b"tmpfs", 0, None)),
            "unshare_user": syscall_errno(libc.unshare(0x10000000)),
            "unshare_mount": syscall_errno(libc.unshare(0x20000)),
            "ptrace": syscall_errno(libc.ptrace(16, 1, 0, 0)),  # PTRACE_ATTACH to pid 1
            "keyctl": syscall_errno(libc.syscall(250 if os.uname().machine == "x86_64"
                                                 else 219, 0, 0, 0, 0, 0)),
            "setuid": attempt(lambda: os.setuid(0)),
            "chroot": attempt(lambda: os.chroot("/tmp")),
            "seccomp": status()["Seccomp"],
        }
    if action == "setuid":
        child = subprocess.Popen(["/usr/bin/su", "root", "-c", "id"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(0.2)
        uids = attempt(lambda: read(f"/proc/{child.pid}/status"))
        child.kill()
        out, err = child.communicate()
        return {
            "setuid_bit": bool(os.stat("/usr/bin/su").st_mode & 0o4000),
            "child_status": uids, "stderr": err.decode(errors="replace")[-200:],
            "returncode": child.returncode,
        }
    if action == "allocate":
        blocks = []
        while True:
            blocks.append(bytearray(16 * 1024 * 1024))
    if action == "forkbomb":
        children = []
        failure = ""
        while len(children) < 5000:
            try:
                pid = os.fork()
            except OSError as exc:
                failure = errno.errorcode.get(exc.errno, str(exc.errno))
                break
            if pid == 0:
                time.sleep(600)
                os._exit(0)
            children.append(pid)
        return {"children": len(children), "failure": failure}
    if action == "linger":
        # A child and a grandchild that ignore SIGTERM and outlive the invocation.
        subprocess.Popen(["/bin/sh", "-c", "trap '' TERM; sleep 600 & sleep 600"])
        time.sleep(event["seconds"])
        return "never"
    if action == "network":
        url = os.environ["AWS_ENDPOINT_URL"] + "/health"
        return {"control_api": attempt(lambda: urllib.request.urlopen(url, timeout=2).status)}
    if action == "ok":
        return "ok"
    raise ValueError(action)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    home = tmp_path_factory.mktemp("sandbox") / "home"
    lamina = LaminaServer(home, {"LAMINA_SANDBOX": "linux"})
    lamina.start()
    try:
        yield lamina
    finally:
        lamina.stop()
        print(f"--- {lamina.log_path.name} ---\n{lamina.log()}")


def make(server: LaminaServer, name: str, **settings: Any) -> None:
    names = {f["FunctionName"] for f in server.client().list_functions()["Functions"]}
    if name not in names:
        create_function(server, name, {"app.py": PROBE}, **{"Timeout": 30, **settings})


def call(server: LaminaServer, name: str, event: dict[str, Any], **kwargs: Any) -> Any:
    response = invoke(server, name, event, **kwargs)
    body = json.loads(response["Body"])
    if "FunctionError" in response:
        return {"function_error": body, "log": base64.b64decode(response.get("LogResult", ""))}
    return body


def healthy(server: LaminaServer) -> None:
    assert server.get("/health") is not None
    make(server, "bystander")
    assert call(server, "bystander", {"action": "ok"}) == "ok"


def namespace_members(pid: int) -> set[tuple[int, str]]:
    """(pid, start time) of every host process in the pid namespace `pid` belongs to."""
    namespace = os.readlink(f"/proc/{pid}/ns/pid")
    members = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") == namespace:
                members.add((int(entry), _started(int(entry))))
        except OSError:
            continue
    return members


def settled(members: set[tuple[int, str]], count: int) -> set[tuple[int, str]]:
    return members if len(members) >= count else set()


def _started(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def test_the_function_sees_lambdas_layout_as_an_unprivileged_user(server: LaminaServer) -> None:
    make(server, "looker")
    seen = call(server, "looker", {"action": "look"})
    assert (seen["uid"], seen["gid"], seen["groups"]) == (993, 993, [])
    assert seen["whoami"]["value"] == "sbx_user1051"
    assert seen["cwd"] == "/var/task"
    assert seen["task"] == ["app.py"]
    assert seen["tmp"] == [] or all(not n.startswith("secret") for n in seen["tmp"])
    for wanted in ("usr", "etc", "tmp", "proc", "dev", "var", "opt"):
        assert wanted in seen["root"]
    for absent in ("home", "srv", "sys", "run", "boot", "mnt", "media"):
        assert absent not in seen["root"]
    status = seen["status"]
    assert status["NoNewPrivs"] == "1"
    assert status["Seccomp"] == "2"
    for capabilities in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[capabilities], 16) == 0, capabilities
    for line in seen["mountinfo"].splitlines():
        options = line.split(" - ")[0].split()[5]
        assert "nosuid" in options.split(","), line


def test_the_data_directory_and_other_functions_code_are_not_there(server: LaminaServer) -> None:
    make(server, "victim", Environment={"Variables": {"SECRET": "hunter2"}})
    make(server, "thief")
    victim_code = next((server.home / "bundles").glob("**/app.py")).parent
    targets = [
        str(server.home),
        str(server.home / "lamina.db"),
        str(server.home / "keys" / "parameters.key"),
        str(victim_code),
        str(victim_code / "app.py"),
        "/etc/shadow",
    ]
    seen = call(server, "thief", {"action": "look", "paths": [*targets, "/root"]})
    for path in targets:
        assert not seen["reads"][path]["ok"], path
        assert not seen["lists"][path]["ok"], path
    # /root exists inside only as the way to a runtime the sandbox shows (pyenv's Python).
    shown = {Path(d).parts[2] for d in runtime_dirs() if Path(d).parts[1:2] == ("root",)}
    assert set(seen["lists"]["/root"].get("value", [])) <= shown
    assert (server.home / "lamina.db").exists()  # it exists; the function cannot see it


def test_the_platforms_environment_and_processes_are_out_of_sight(server: LaminaServer) -> None:
    make(server, "snoop")
    assert server.process is not None
    seen = call(server, "snoop", {"action": "look", "paths": [f"/proc/{server.process.pid}"]})
    # Its own pid namespace, where the runtime is pid 1: no process of the host's in sight.
    assert seen["proc_pids"] == [1]
    assert not [k for k in seen["env_keys"] if k.startswith("LAMINA_")]
    assert seen["environ"]["1"]["ok"]  # its own
    assert "LAMINA_" not in seen["environ"]["1"]["value"]
    assert "AWS_LAMBDA_FUNCTION_NAME=snoop" in seen["environ"]["1"]["value"]
    # What Lambda shows, whether the runtime was exec'd or forked from the nursery's zygote.
    assert seen["cmdline"] == bootstrap_command(python_for("python3.11"), "/opt")


def test_var_task_and_the_system_are_read_only(server: LaminaServer) -> None:
    make(server, "writer")
    paths = ["/var/task/app.py", "/var/task/new.py", "/etc/passwd", "/usr/evil", "/evil"]
    results = call(server, "writer", {"action": "write", "paths": [*paths, "/tmp/fine"]})
    for path in paths:
        assert results[path]["ok"] is False, path
        assert results[path]["errno"] in (13, 30), path  # EACCES or EROFS
    assert results["/tmp/fine"]["ok"] is True


def test_another_environments_tmp_is_private(server: LaminaServer) -> None:
    make(server, "leaver")
    make(server, "reader")
    assert call(server, "leaver", {"action": "leave", "secret": "s3cr3t"}) == "left"
    seen = call(server, "reader", {"action": "look", "paths": ["/tmp/secret.txt"]})
    assert "secret.txt" not in seen["tmp"]
    assert not seen["reads"]["/tmp/secret.txt"]["ok"]


def test_mount_namespaces_and_tracing_are_refused_by_seccomp(server: LaminaServer) -> None:
    make(server, "mounter")
    seen = call(server, "mounter", {"action": "mount"})
    assert seen["seccomp"] == "2"
    assert seen["mount"] == 1  # EPERM
    assert seen["unshare_user"] == 1  # allowed to unprivileged users without the filter
    assert seen["unshare_mount"] == 1
    assert seen["ptrace"] == 1
    assert seen["keyctl"] == 1
    assert seen["setuid"]["ok"] is False and seen["chroot"]["ok"] is False


@pytest.mark.skipif(
    not os.path.exists("/usr/bin/su") or not os.stat("/usr/bin/su").st_mode & 0o4000,
    reason="needs a setuid /usr/bin/su",
)
def test_a_setuid_binary_gains_nothing(server: LaminaServer) -> None:
    make(server, "escalator")
    seen = call(server, "escalator", {"action": "setuid"})
    assert seen["setuid_bit"] is True  # the binary is setuid root...
    uid_line = re.search(r"^Uid:\s+(.*)$", seen["child_status"]["value"], re.M)
    assert uid_line is not None
    assert uid_line.group(1).split() == ["993"] * 4  # ...and it still runs as 993


def test_exceeding_memory_is_a_kill_reported_as_lambda_does(server: LaminaServer) -> None:
    make(server, "hog", MemorySize=128)
    response = invoke(server, "hog", {"action": "allocate"}, LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    body = json.loads(response["Body"])
    assert body["errorType"] == "Runtime.ExitError"
    assert body["errorMessage"].endswith("Error: Runtime exited with error: signal: killed")
    report = base64.b64decode(response["LogResult"]).decode().rstrip("\n").splitlines()[-1]
    assert "Memory Size: 128 MB\tMax Memory Used: 128 MB" in report
    healthy(server)
    assert call(server, "hog", {"action": "ok"}) == "ok"  # a new environment


def test_a_fork_bomb_is_contained_by_the_process_limit(server: LaminaServer) -> None:
    make(server, "bomb", MemorySize=2048)
    result = call(server, "bomb", {"action": "forkbomb"})
    assert result.get("failure") == "EAGAIN", result
    assert 900 <= result["children"] < 1024, result
    healthy(server)
    assert call(server, "bomb", {"action": "ok"}) == "ok"


def test_a_timeout_kills_every_descendant(server: LaminaServer) -> None:
    make(server, "lingerer", Timeout=2)
    with ThreadPoolExecutor(1) as executor:
        running = executor.submit(invoke, server, "lingerer", {"action": "linger", "seconds": 30})
        env = wait_until(lambda: [e for e in server.environments("lingerer") if e["pid"]])[0]
        # the runtime (pid 1), sh and its two sleeps
        members = wait_until(lambda: settled(namespace_members(env["pid"]), 4))
        response = running.result()
    assert json.loads(response["Body"])["errorType"] == "Sandbox.Timedout"
    wait_until(lambda: not [p for p, started in members if _started(p) == started], timeout=10)
    healthy(server)


def test_network_none_keeps_the_runtime_api_and_cuts_the_rest(server: LaminaServer) -> None:
    make(server, "offline", Environment={"Variables": {"LAMINA_NETWORK": "none"}})
    make(server, "online")
    cut = call(server, "offline", {"action": "network"})
    assert cut["control_api"]["ok"] is False  # the invocation itself came through
    assert call(server, "online", {"action": "network"})["control_api"] == {
        "ok": True,
        "value": 200,
    }
    seen = call(server, "offline", {"action": "look"})
    assert "LAMINA_NETWORK" not in seen["env_keys"]


def test_a_killed_lamina_leaves_no_environment_or_cgroup_behind(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    lamina = LaminaServer(tmp_path_factory.mktemp("killed") / "home", {"LAMINA_SANDBOX": "linux"})
    lamina.start()
    try:
        create_function(lamina, "f", {"app.py": PROBE})
        assert call(lamina, "f", {"action": "ok"}) == "ok"
        environment = lamina.environments("f")[0]["pid"]
        assert lamina.process is not None
        trees = list(Path("/sys/fs/cgroup").glob(f"**/lamina-{lamina.process.pid}-*"))
        assert trees
    finally:
        lamina.stop(signal.SIGKILL)
    # The nursery notices and cleans up: kills what runs in the cgroups, removes them.
    wait_until(lambda: not pid_alive(environment), timeout=10)
    wait_until(lambda: not [t for t in trees if t.exists()], timeout=10)
