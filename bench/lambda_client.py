"""A small client of Lamina's control API (the Lambda REST API) over one keep-alive
connection, so that a measured call pays for the request and not for a TCP handshake."""

from __future__ import annotations

import base64
import http.client
import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

BREF_LAYER = "arn:aws:lambda:us-east-1:534081306603:layer:{name}:60"


def zip_tree(root: Path) -> bytes:
    """The files under `root` as a Lambda zip, world-readable (the sandbox's user does not
    own them)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file() and ".serverless" not in path.parts:
                info = zipfile.ZipInfo(str(path.relative_to(root)), (2020, 1, 1, 0, 0, 0))
                info.external_attr = 0o100644 << 16
                archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


class LambdaClient:
    def __init__(self, url: str, timeout: float = 120.0) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
        self.connection.connect()

    def call(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        self.connection.request(method, path, body)
        response = self.connection.getresponse()
        return response.status, response.read()

    def create(
        self,
        name: str,
        code: bytes,
        handler: str,
        runtime: str = "python3.11",
        layers: tuple[str, ...] = (),
        memory: int = 256,
    ) -> None:
        spec: dict[str, Any] = {
            "FunctionName": name,
            "Runtime": runtime,
            "Handler": handler,
            "Code": {"ZipFile": base64.b64encode(code).decode()},
            "Timeout": 30,
            "MemorySize": memory,
            "Layers": list(layers),
        }
        status, body = self.call("POST", "/2015-03-31/functions", json.dumps(spec).encode())
        if status != 201:
            raise RuntimeError(f"creating {name}: {status} {body[:300]!r}")

    def delete(self, name: str) -> None:
        status, body = self.call("DELETE", f"/2015-03-31/functions/{name}")
        if status not in (200, 204):
            raise RuntimeError(f"deleting {name}: {status} {body[:300]!r}")

    def invoke(self, name: str, payload: bytes = b"{}") -> float:
        """Seconds from sending the invocation to reading its whole answer."""
        started = time.perf_counter()
        self.connection.request("POST", f"/2015-03-31/functions/{name}/invocations", payload)
        response = self.connection.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        # A function error is a 200 too: a benchmark of failures would measure nothing.
        if response.status != 200 or response.getheader("X-Amz-Function-Error"):
            raise RuntimeError(f"invoking {name}: {response.status} {body[:300]!r}")
        return elapsed

    def status(self) -> dict[str, Any]:
        code, body = self.call("GET", "/lamina/v1/status")
        if code != 200:
            raise RuntimeError(f"status: {code} {body[:300]!r}")
        result: dict[str, Any] = json.loads(body)
        return result

    def close(self) -> None:
        self.connection.close()
