"""The functions the cold-start, scale-up and memory figures create through the Lambda API:
the handlers of bench/functions/, one per runtime, as a no-op and as a sleep."""

from __future__ import annotations

import json
from dataclasses import dataclass

from bench.lambda_client import BREF_LAYER, LambdaClient

PHP_LAYER = BREF_LAYER.format(name="php-82")
FPM_LAYER = BREF_LAYER.format(name="php-82-fpm")


@dataclass(frozen=True, slots=True)
class Kind:
    runtime: str
    noop_handler: str
    sleep_handler: str
    layers: tuple[str, ...] = ()
    http: bool = False  # php-fpm answers HTTP events only


KINDS = {
    "python": Kind("python3.11", "python/handler.noop", "python/handler.sleep"),
    "php-function": Kind("provided.al2", "php/function.php", "php/sleep.php", (PHP_LAYER,)),
    "php-fpm": Kind("provided.al2", "public/index.php", "public/sleep.php", (FPM_LAYER,), True),
}


def http_event(path: str, query: str = "") -> dict[str, object]:
    """An API Gateway v2 (httpApi) GET event, what the gateway would send."""
    params = dict(p.split("=", 1) for p in query.split("&") if p)
    return {
        "version": "2.0",
        "routeKey": f"GET {path}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"host": "bench.localhost"},
        "queryStringParameters": params or None,
        "requestContext": {
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1"},
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }


def noop_payload(kind: str) -> bytes:
    return json.dumps(http_event("/hello") if KINDS[kind].http else {}).encode()


def sleep_payload(kind: str, seconds: float) -> bytes:
    if KINDS[kind].http:
        return json.dumps(http_event("/sleep", f"seconds={seconds}")).encode()
    return json.dumps({"seconds": seconds}).encode()


def create(
    client: LambdaClient, name: str, kind: str, code: bytes, sleep: bool, memory: int = 128
) -> None:
    spec = KINDS[kind]
    handler = spec.sleep_handler if sleep else spec.noop_handler
    client.create(name, code, handler, spec.runtime, spec.layers, memory)
