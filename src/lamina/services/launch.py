"""How an execution environment is started for a function: argv, environment, paths.

The environment variables are Lambda's (reference 1.4), with the precedence Lambda uses:
the function's own variables < platform defaults < credentials < runtime-reserved values.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Literal

from lamina.config import Settings
from lamina.core.models import Account
from lamina.core.runtimes import choose
from lamina.runtimes.php import RUNTIME_DIR as PHP_RUNTIME_DIR
from lamina.runtimes.python import BOOTSTRAP_PATH, LANG, bootstrap_command, python_for
from lamina.services import fpm_launch, php_launch
from lamina.services.environment import Launch
from lamina.services.registry import DeployedFunction
from lamina.wire.logs import log_group, stream_name

# AWS_LAMBDA_INITIALIZATION_TYPE: started for an invocation (or pre-warmed by the keep-alive
# policy, which is Lamina's business, not the function's) or by provisioned concurrency.
InitializationType = Literal["on-demand", "provisioned-concurrency"]


class EntrypointMissing(Exception):
    """A `provided` function has no executable bootstrap (`Runtime.InvalidEntrypoint`)."""

    def __init__(self, looked_at: list[str]) -> None:
        super().__init__(f"no executable bootstrap in {looked_at}")
        self.looked_at = looked_at


class Launcher:
    def __init__(self, settings: Settings, account: Account, api_endpoint: str) -> None:
        self._settings = settings
        self._account = account
        self._api_endpoint = api_endpoint
        self._run_root = settings.home / "run"
        access_key = "LAMINA" + "0" * 14
        self._credentials = {
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_ACCESS_KEY": access_key,  # the legacy name Lambda still sets
            "AWS_SECRET_ACCESS_KEY": "lamina-local-secret",
            "AWS_SESSION_TOKEN": "lamina-local-session",
        }

    def launch(
        self, deployed: DeployedFunction, initialization: InitializationType = "on-demand"
    ) -> Launch:
        config = deployed.config
        task_root = deployed.code_dir
        opt = deployed.opt_root
        opt_path = str(opt) if opt else "/opt"
        stream = stream_name(config.version, time.time())
        token = secrets.token_hex(8)
        run_dir = self._run_root / token
        choice = choose(config.runtime, config.layers, config.environment)
        socket_dir: Path | None = None
        if config.is_python:
            argv = tuple(bootstrap_command(python_for(config.runtime), opt_path))
            runtime_dir = str(BOOTSTRAP_PATH.parent)
        elif choice.kind == "php-fpm":
            # Lamina itself is the runtime: it starts php-fpm and speaks FastCGI to it.
            binary = fpm_launch.php_fpm_binary(choice.php_version)
            if binary is None:
                raise EntrypointMissing(fpm_launch.looked_for(choice.php_version))
            socket_dir = fpm_launch.socket_dir(run_dir, token)
            argv = fpm_launch.argv(binary, socket_dir)
            runtime_dir = "/var/runtime"
        elif choice.kind in php_launch.LOOP_KINDS:
            php_argv = php_launch.command(choice)
            if php_argv is None:
                raise EntrypointMissing(php_launch.looked_for(choice))
            argv = php_argv
            runtime_dir = str(PHP_RUNTIME_DIR)
        else:
            argv = (self._find_bootstrap(task_root, opt),)
            runtime_dir = "/var/runtime"
        env: dict[str, str] = dict(config.environment)
        if choice.kind in php_launch.LOOP_KINDS:
            env = {**php_launch.variables(choice, task_root, opt), **env}
        env.update(
            {
                "LANG": LANG,
                "PATH": f"/usr/local/bin:/usr/bin/:/bin:{opt_path}/bin",
                "LD_LIBRARY_PATH": (
                    f"/lib64:/usr/lib64:{runtime_dir}:{runtime_dir}/lib:"
                    f"{task_root}:{task_root}/lib:{opt_path}/lib"
                ),
                "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
                "AWS_ENDPOINT_URL": self._api_endpoint,
                "TMPDIR": str(run_dir / "tmp"),
            }
        )
        if config.is_python:
            env["PYTHONPATH"] = runtime_dir
        if socket_dir is not None:
            env["PHP_INI_SCAN_DIR"] = fpm_launch.ini_scan_dir(task_root, opt)
        env.update(self._credentials)
        env.update(
            {
                "_HANDLER": config.handler,
                "AWS_REGION": self._account.region,
                "AWS_DEFAULT_REGION": self._account.region,
                "AWS_LAMBDA_FUNCTION_NAME": config.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_size),
                "AWS_LAMBDA_FUNCTION_VERSION": config.version,
                "AWS_LAMBDA_INITIALIZATION_TYPE": initialization,
                "AWS_LAMBDA_LOG_GROUP_NAME": log_group(config.name),
                "AWS_LAMBDA_LOG_STREAM_NAME": stream,
                "LAMBDA_TASK_ROOT": str(task_root),
                "LAMBDA_RUNTIME_DIR": runtime_dir,
                "TZ": ":UTC",
            }
        )
        if config.is_python:
            # Not set for provided runtimes, as on Lambda.
            env["AWS_EXECUTION_ENV"] = f"AWS_Lambda_{config.runtime}"
        return Launch(
            argv=argv,
            env=env,
            task_root=task_root,
            opt_root=opt,
            run_dir=run_dir,
            stream=stream,
            socket_dir=socket_dir,
        )

    @staticmethod
    def _find_bootstrap(task_root: Path, opt: Path | None) -> str:
        candidates = [task_root / "bootstrap"]
        if opt is not None:
            candidates.append(opt / "bootstrap")
        for candidate in candidates:
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
        shown = [str(task_root / "bootstrap"), str(opt / "bootstrap") if opt else "/opt/bootstrap"]
        raise EntrypointMissing(shown)
