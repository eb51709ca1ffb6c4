"""The systems under test, each started on free ports and stopped with its whole process
group: Lamina (`lamina up`, one instance per sandbox driver), serverless-offline, and nginx
in front of php-fpm."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.lambda_client import LambdaClient
from bench.procs import free_port, stop_group, wait_http

BENCH = Path(__file__).resolve().parent
PEERS = BENCH / "peers"
OFFLINE_DIR = PEERS / "serverless-offline"
# Serverless v3 asks for nothing and sends nothing when told so.
QUIET_SERVERLESS = {
    "SLS_TELEMETRY_DISABLED": "1",
    "SLS_TRACKING_DISABLED": "1",
    "SLS_NOTIFICATIONS_MODE": "off",
    "SLS_DEPRECATION_DISABLE": "*",
    "SLS_INTERACTIVE_SETUP_DISABLE": "1",
}


class Lamina:
    """`lamina up` with a temporary home; `sandbox` is LAMINA_SANDBOX (auto or plain)."""

    def __init__(self, sandbox: str, work: Path) -> None:
        self.sandbox = sandbox
        self.home = Path(tempfile.mkdtemp(prefix=f"lamina-{sandbox}-", dir=work))
        self.process: subprocess.Popen[bytes] | None = None
        self.control_url = ""
        self.data_url = ""
        self.driver = ""

    def __repr__(self) -> str:
        return f"<Lamina sandbox={self.sandbox} driver={self.driver} {self.data_url}>"

    def start(self) -> None:
        env = {
            **os.environ,
            "LAMINA_HOME": str(self.home),
            "LAMINA_PORT": "0",
            "LAMINA_CONTROL_PORT": "0",
            "LAMINA_SANDBOX": self.sandbox,
        }
        log = (self.home / "lamina.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lamina", "up"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        endpoints = self.home / "endpoints.json"
        deadline = time.monotonic() + 60
        while not endpoints.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"lamina up did not start:\n{self.log()}")
            time.sleep(0.05)
        urls = json.loads(endpoints.read_text())
        self.control_url, self.data_url = urls["control"], urls["data"]
        host, port = self.control_url.removeprefix("http://").split(":")
        wait_http(host, int(port), "/health", 30, self.process)
        self.driver = "linux" if "sandbox driver: linux" in self.log() else "plain"

    def pids(self) -> tuple[int, ...]:
        """The root of this system's process tree (`lamina up`: gateway, environments)."""
        return (self.process.pid,) if self.process else ()

    def log(self) -> str:
        path = self.home / "lamina.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def client(self) -> LambdaClient:
        return LambdaClient(self.control_url)

    def cli(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        """The `lamina` command of this venv, pointed at this server."""
        lamina = Path(sys.executable).parent / "lamina"
        env = {**os.environ, "LAMINA_ENDPOINT": self.control_url, "NO_COLOR": "1"}
        done = subprocess.run(
            [str(lamina), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            raise RuntimeError(f"lamina {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process, timeout=30)


class ServerlessOffline:
    """serverless-offline (Serverless Framework v3) running a copy of the project."""

    def __init__(self, project: Path) -> None:
        self.project = project
        self.http_port = free_port()
        self.lambda_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<ServerlessOffline http={self.http_port} lambda={self.lambda_port}>"

    @property
    def data_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def lambda_url(self) -> str:
        return f"http://127.0.0.1:{self.lambda_port}"

    def start(self) -> None:
        link = self.project / "node_modules"
        if not link.exists():
            link.symlink_to(OFFLINE_DIR / "node_modules")
        env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
        # Python handlers run on `python3` looked up on PATH: Debian's, not a pyenv shim.
        env["PATH"] = "/usr/bin:/bin:" + env.get("PATH", "")
        env.update(QUIET_SERVERLESS)
        serverless = OFFLINE_DIR / "node_modules" / "serverless" / "bin" / "serverless.js"
        argv = ["node", str(serverless), "offline", "start", "--host", "127.0.0.1"]
        argv += ["--httpPort", str(self.http_port), "--lambdaPort", str(self.lambda_port)]
        log = (self.project / "offline.log").open("wb")
        self.process = subprocess.Popen(
            argv,
            cwd=self.project,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_http("127.0.0.1", self.http_port, "/", 120, self.process)

    def pids(self) -> tuple[int, ...]:
        """node (the HTTP server and the handler runners) and its Python children."""
        return (self.process.pid,) if self.process else ()

    def log(self) -> str:
        path = self.project / "offline.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def client(self) -> LambdaClient:
        return LambdaClient(self.lambda_url)

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)


def render(template: Path, target: Path, values: dict[str, str]) -> Path:
    text = template.read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    target.write_text(text)
    return target


class NginxPhpFpm:
    """nginx (workers as www-data) in front of php-fpm (pm static, 4 children, unix socket),
    configured from bench/peers/nginx/ in a temporary directory."""

    def __init__(self, root: Path, work: Path) -> None:
        self.root = root
        self.dir = Path(tempfile.mkdtemp(prefix="nginx-", dir=work))
        self.port = free_port()
        self.nginx: subprocess.Popen[bytes] | None = None
        self.fpm: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<NginxPhpFpm {self.data_url}>"

    @property
    def data_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        # www-data must reach the socket directory and read the code.
        for path in (self.dir, self.dir.parent):
            path.chmod(path.stat().st_mode | 0o055)
        values = {"dir": str(self.dir), "root": str(self.root), "port": str(self.port)}
        nginx_conf = render(PEERS / "nginx" / "nginx.conf", self.dir / "nginx.conf", values)
        fpm_conf = render(PEERS / "nginx" / "php-fpm.conf", self.dir / "php-fpm.conf", values)
        php_ini = shutil.copy(PEERS / "nginx" / "php.ini", self.dir / "php.ini")
        fpm_log = (self.dir / "php-fpm.out").open("wb")
        self.fpm = subprocess.Popen(
            [php_fpm_binary(), "--nodaemonize", "-y", str(fpm_conf), "-c", str(php_ini)],
            stdout=fpm_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        nginx_log = (self.dir / "nginx.out").open("wb")
        self.nginx = subprocess.Popen(
            ["nginx", "-p", str(self.dir), "-c", str(nginx_conf)],
            stdout=nginx_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while not (self.dir / "php-fpm.sock").exists():
            if self.fpm.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"php-fpm did not start:\n{self.log()}")
            time.sleep(0.05)
        wait_http("127.0.0.1", self.port, "/hello", 20, self.nginx)

    def pids(self) -> tuple[int, ...]:
        """nginx's master (its workers below it), php-fpm's master (its children below)."""
        return tuple(p.pid for p in (self.nginx, self.fpm) if p is not None)

    def log(self) -> str:
        parts = []
        for name in ("php-fpm.out", "php-fpm.log", "nginx.out", "nginx-error.log"):
            path = self.dir / name
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text(errors='replace')}")
        return "\n".join(parts)

    def stop(self) -> None:
        for process in (self.nginx, self.fpm):
            if process is not None:
                stop_group(process)


def php_fpm_binary() -> str:
    for name in ("php-fpm8.2", "php-fpm"):
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
        if found:
            return found
    raise FileNotFoundError("php-fpm (apt-get install php8.2-fpm)")
