"""`lamina up` as a process: graceful shutdown, and the `lamina` CLI against it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tests.e2e.harness import LaminaServer, create_function, invoke, wait_until
from tests.e2e.mailbox import mailbox

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]

SLOW = """
import os, time, urllib.request

def handler(event, context):
    urllib.request.urlopen(event["mailbox"] + "/post/started", b"").read()
    time.sleep(1.5)
    return "finished"
"""


def test_sigterm_lets_in_flight_invocations_finish(lamina: LaminaServer) -> None:
    create_function(lamina, "slow", {"app.py": SLOW}, Timeout=30)
    with mailbox() as box, ThreadPoolExecutor(1) as executor:
        running = executor.submit(invoke, lamina, "slow", {"mailbox": box.url})
        wait_until(lambda: "started" in box.messages)
        assert lamina.process is not None
        lamina.process.terminate()
        assert json.loads(running.result(timeout=60)["Body"]) == "finished"
    assert lamina.stop() == 0
    assert "Lamina stopped" in lamina.log()


def _cli(server: LaminaServer, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAMINA_ENDPOINT": server.control_url, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "lamina", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_readme_flow_deploy_invoke_logs_ls(lamina: LaminaServer, tmp_path: Path) -> None:
    service = tmp_path / "hello"
    shutil.copytree(ROOT / "examples" / "hello-python", service)
    deployed = _cli(lamina, service, "deploy")
    assert deployed.returncode == 0, deployed.stderr
    assert "hello-dev-hello" in deployed.stdout

    invoked = _cli(lamina, service, "invoke", "-f", "hello", "--data", '{"name": "e2e"}')
    assert invoked.returncode == 0, invoked.stderr
    assert json.loads(invoked.stdout)["message"] == "Hello, e2e!"

    def logged() -> bool:
        result = _cli(lamina, service, "logs", "-f", "hello")
        return "greeting e2e" in result.stdout and "REPORT RequestId" in result.stdout

    wait_until(logged)
    listed = _cli(lamina, tmp_path, "ls")
    assert listed.returncode == 0 and "hello-dev-hello" in listed.stdout

    again = _cli(lamina, service, "deploy")
    assert again.returncode == 0 and "unchanged" in again.stdout

    missing = _cli(lamina, tmp_path, "invoke", "-f", "nope")
    assert missing.returncode == 1
    assert missing.stderr.strip().startswith("error: ResourceNotFoundException")
    assert "Traceback" not in missing.stderr


def test_a_second_server_on_the_same_home_is_refused(lamina: LaminaServer) -> None:
    env = {**os.environ, "LAMINA_HOME": str(lamina.home), "LAMINA_PORT": "0"}
    env["LAMINA_CONTROL_PORT"] = "0"
    result = subprocess.run(
        [sys.executable, "-m", "lamina", "up"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "another `lamina up` is using" in result.stderr
