"""End-to-end harness: a real `lamina up` on free ports with a temporary home, and helpers."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def make_zip(files: Mapping[str, str | bytes], executable: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            mode = 0o755 if name in executable else 0o644
            info.external_attr = (0o100000 | mode) << 16
            data = content.encode() if isinstance(content, str) else content
            archive.writestr(info, data)
    return buffer.getvalue()


def wait_until(predicate: Any, timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class LaminaServer:
    def __init__(self, home: Path, settings: Mapping[str, str]) -> None:
        self.home = home
        self.settings = dict(settings)
        self.log_path = home.parent / f"{home.name}-server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.control_url = ""
        self.data_url = ""

    def start(self) -> None:
        env = {
            **os.environ,
            **CREDENTIALS,
            "LAMINA_HOME": str(self.home),
            "LAMINA_PORT": "0",
            "LAMINA_CONTROL_PORT": "0",
            # The sandbox every server of the run uses unless a test picks one.
            "LAMINA_SANDBOX": os.environ.get("LAMINA_TEST_SANDBOX", "auto"),
            **self.settings,
        }
        endpoints = self.home / "endpoints.json"
        endpoints.unlink(missing_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lamina", "up"], env=env, stdout=log, stderr=log
        )
        log.close()

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"lamina up exited:\n{self.log()}")
            if not endpoints.exists():
                return False
            try:
                urls = json.loads(endpoints.read_text())
            except ValueError:
                return False
            self.control_url, self.data_url = urls["control"], urls["data"]
            try:
                with urllib.request.urlopen(f"{self.control_url}/health", timeout=2) as r:
                    return bool(r.status == 200)
            except OSError:
                return False

        wait_until(ready, timeout=30)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        process = self.process
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.process = None
        return process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def client(self, retries: int = 1) -> Any:
        return boto3.client(
            "lambda",
            endpoint_url=self.control_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(
                retries={"total_max_attempts": retries, "mode": "standard"},
                read_timeout=120,
            ),
        )

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.control_url}{path}", timeout=10) as response:
            return json.loads(response.read())

    def environments(self, function: str | None = None) -> list[dict[str, Any]]:
        envs = self.get("/lamina/v1/status")["environments"]
        return [e for e in envs if function in (None, e["function"])]

    def logs(self, function: str) -> list[str]:
        return [
            e["message"] for e in self.get(f"/lamina/v1/logs?function={function}&since=0")["events"]
        ]


def create_function(
    server: LaminaServer,
    name: str,
    files: Mapping[str, str | bytes],
    *,
    runtime: str = "python3.11",
    handler: str = "app.handler",
    executable: tuple[str, ...] = (),
    **settings: Any,
) -> dict[str, Any]:
    client = server.client()
    result: dict[str, Any] = client.create_function(
        FunctionName=name,
        Runtime=runtime,
        Handler=handler,
        Role="arn:aws:iam::000000000000:role/lambda",
        Code={"ZipFile": make_zip(files, executable)},
        **settings,
    )
    return result


def invoke(server: LaminaServer, name: str, payload: Any = None, **kwargs: Any) -> dict[str, Any]:
    client = kwargs.pop("client", None) or server.client()
    body = json.dumps({} if payload is None else payload).encode()
    response: dict[str, Any] = client.invoke(FunctionName=name, Payload=body, **kwargs)
    response["Body"] = response.pop("Payload").read()
    return response
