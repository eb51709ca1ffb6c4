"""Composition root: settings -> adapters -> services -> servers. The only place that wires
them together, and (with `cli/`) the only place that prints."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import resource
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from lamina import __version__
from lamina.config import Settings
from lamina.core.clock import SystemClock
from lamina.core.errors import RequestTooLargeException
from lamina.core.keepalive import make_policy
from lamina.core.models import Account
from lamina.core.scheduling import Ledger
from lamina.http.control_api import MAX_CONTROL_BODY, ControlApi, Router
from lamina.http.errors import render
from lamina.http.events_api import EventsApi
from lamina.http.gateway import MAX_BODY as GATEWAY_MAX_BODY
from lamina.http.gateway import Gateway, too_large_response
from lamina.http.lamina_api import LaminaApi
from lamina.http.provisioned_api import ProvisionedApi
from lamina.http.runtime_api import RuntimeApi
from lamina.http.server import Request, Response, serve
from lamina.http.sqs_api import SqsApi
from lamina.http.ssm_api import SsmApi
from lamina.http.targets import TargetRouter
from lamina.http.versions_api import VersionsApi
from lamina.sandbox import default_driver, describe
from lamina.services.async_invoke import AsyncInvoker
from lamina.services.deploy import DeployService
from lamina.services.event_sources import EventSourceConsumers
from lamina.services.functions import FunctionService
from lamina.services.invoke import InvokeService
from lamina.services.launch import Launcher
from lamina.services.params import ParameterService
from lamina.services.pool import Pool
from lamina.services.provisioned import ProvisionedService
from lamina.services.queues import QueueService
from lamina.services.registry import Registry
from lamina.services.schedules import ScheduleService
from lamina.services.secrets import AesGcmCipher
from lamina.services.triggers import Triggers
from lamina.services.versions import VersionService
from lamina.store.blobs import CodeStore
from lamina.store.deployments import SqliteDeploymentStore
from lamina.store.events import SqliteEventInvokeConfigStore, SqliteEventStore
from lamina.store.params import SqliteParameterStore
from lamina.store.queues import SqliteQueueStore
from lamina.store.schedules import SqliteScheduleStore
from lamina.store.sqlite import SqliteStore
from lamina.store.versions import SqliteVersionStore
from lamina.telemetry.logs import LogSink

log = logging.getLogger("lamina")


class AlreadyRunning(Exception):
    pass


@dataclass
class Running:
    control_url: str
    data_url: str
    stop: asyncio.Event


def _too_large(limit: int) -> Response:
    return render(RequestTooLargeException(f"Request must be smaller than {limit} bytes"))


def _lock(home: Path) -> IO[str]:
    handle = (home / "lamina.lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise AlreadyRunning(f"another `lamina up` is using {home}") from None
    return handle


async def serve_platform(settings: Settings, out: IO[str] = sys.stdout) -> None:
    """Run until SIGINT/SIGTERM, then shut down gracefully."""
    home = settings.home
    home.mkdir(parents=True, exist_ok=True)
    lock = _lock(home)
    # Environments of a previous process that died are gone; so is their scratch space.
    shutil.rmtree(home / "run", ignore_errors=True)

    store = SqliteStore(settings.database)
    code = CodeStore(home / "bundles")
    account = Account(settings.region, settings.account_id)
    clock = SystemClock()
    sink = LogSink(store)
    ledger = Ledger(settings.concurrency, settings.memory_budget_mb)
    registry = Registry(account)

    control: ControlApi | None = None

    async def control_handler(request: Request) -> Response:
        assert control is not None
        return await control(request)

    control_server = await serve(
        control_handler,
        settings.host,
        settings.control_port,
        max_body=MAX_CONTROL_BODY,
        too_large=_too_large,
    )
    control_port = control_server.sockets[0].getsockname()[1]
    control_url = f"http://{settings.host}:{control_port}"

    pool = Pool(
        ledger=ledger,
        clock=clock,
        launcher=Launcher(settings, account, control_url),
        driver=default_driver(settings),
        runtime_api=RuntimeApi(),
        sink=sink,
        keep_alive=settings.keep_alive,
        policy=make_policy(settings.keep_alive_policy, settings.keep_alive),
        init_timeout=settings.init_timeout,
        registry=registry,
    )
    invoke = InvokeService(
        registry=registry,
        pool=pool,
        sink=sink,
        clock=clock,
        account=account,
        init_timeout=settings.init_timeout,
    )
    versions_store = SqliteVersionStore(store)
    functions = FunctionService(
        store=store,
        versions=versions_store,
        code=code,
        registry=registry,
        pool=pool,
        ledger=ledger,
        account=account,
    )
    queues = QueueService(
        store=SqliteQueueStore(store), clock=clock, account=account, base_url=control_url
    )
    consumers = EventSourceConsumers(queues=queues, invoke=invoke, clock=clock, account=account)
    event_queue = SqliteEventStore(store)
    invoke_configs = SqliteEventInvokeConfigStore(store)
    events = AsyncInvoker(
        queue=event_queue,
        configs=invoke_configs,
        invoke=invoke,
        ledger=ledger,
        clock=clock,
        account=account,
        queues=queues,
        retry_delay=settings.async_retry_delay,
    )
    schedules = ScheduleService(
        store=SqliteScheduleStore(store), clock=clock, account=account, wake_invoker=events.wake
    )
    # More control API routes, each from its own module (SSM, versions, deployments...).
    routers: list[Router] = []
    gateway = Gateway(invoke=invoke, account=account, clock=clock)
    versions = VersionService(
        versions=versions_store, functions=functions, registry=registry, account=account
    )
    routers.append(VersionsApi(versions=versions, functions=functions, account=account))
    provisioned = ProvisionedService(
        store=versions_store,
        registry=registry,
        pool=pool,
        ledger=ledger,
        account=account,
        clock=clock,
    )
    routers.append(ProvisionedApi(provisioned=provisioned, account=account))
    deploy = DeployService(
        deployments=SqliteDeploymentStore(store),
        code=code,
        registry=registry,
        pool=pool,
        ledger=ledger,
        routes=gateway,
        account=account,
        clock=clock,
        triggers=Triggers(schedules=schedules, configs=invoke_configs, clock=clock, queues=queues),
        provisioned=provisioned,
    )
    lamina_api = LaminaApi(deploy=deploy, code=code)
    routers.append(lamina_api)
    params = ParameterService(SqliteParameterStore(store), AesGcmCipher.for_home(home), clock)
    # SSM and SQS share `POST /`; X-Amz-Target says which API a request is for.
    ssm, sqs = SsmApi(params, account), SqsApi(queues)
    routers.append(TargetRouter({"AmazonSSM.": ssm.handle, "AmazonSQS.": sqs.handle}))
    routers.append(
        EventsApi(
            events=events,
            queue=event_queue,
            configs=invoke_configs,
            schedules=schedules,
            invoke=invoke,
            account=account,
            clock=clock,
        )
    )
    control = ControlApi(
        functions=functions,
        invoke=invoke,
        events=events,
        pool=pool,
        store=store,
        account=account,
        routers=routers,
    )
    data_server = await serve(
        gateway,
        settings.host,
        settings.port,
        max_body=GATEWAY_MAX_BODY,
        too_large=too_large_response,
    )
    data_port = data_server.sockets[0].getsockname()[1]
    data_url = f"http://{settings.host}:{data_port}"

    lamina_api.data_url = data_url
    count = functions.load()
    deploy.load()
    sink.start()
    pool.start_reaper()
    provisioned.load()  # configurations in the store: their environments start now
    provisioned.start()
    events.start()
    schedules.start()
    queues.start()
    consumers.start()
    control.ready = True
    (home / "endpoints.json").write_bytes(
        orjson.dumps({"control": control_url, "data": data_url, "pid": os.getpid()})
    )
    print(f"Lamina {__version__} is up (home {home}, {count} functions)", file=out)
    print(f"  control API (Lambda, SSM, SQS APIs, deployments, logs): {control_url}", file=out)
    print(f"  data plane (HTTP gateway, /<service>/<stage>/...):    {data_url}", file=out)
    for line in describe(settings.sandbox):
        print(f"  {line}", file=out)
    out.flush()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    print("Lamina is shutting down: finishing in-flight invocations", file=out)
    out.flush()
    control.ready = False
    data_server.close()
    await schedules.close()
    await events.close()
    await consumers.close()  # batches in flight finish within their function's timeout
    await queues.close()
    # In-flight synchronous invocations finish or reach their own timeout.
    longest = max((e.function.timeout for e in pool.environments()), default=0)
    deadline = loop.time() + longest + 1
    while invoke.in_flight and loop.time() < deadline:
        await asyncio.sleep(0.05)
    control_server.close()
    await provisioned.close()
    await pool.close()
    await sink.close()
    store.close()
    with contextlib.suppress(FileNotFoundError):
        (home / "endpoints.json").unlink()
    lock.close()
    print("Lamina stopped", file=out)


def raise_file_limit() -> int:
    """Open files up to the hard limit: each environment holds a handful of descriptors
    (Runtime API socket and connection, log pipe, pidfd, sandbox socket), and a soft limit
    of 1,024, common on Linux, would stop a node at ~150 environments."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def run(settings: Settings) -> None:
    logging.basicConfig(
        level=os.environ.get("LAMINA_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    raise_file_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve_platform(settings))
