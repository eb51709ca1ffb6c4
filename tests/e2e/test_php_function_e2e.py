"""PHP functions (Bref's `php-8x` function runtime) through the whole platform: created with
boto3 on Bref's layers, deployed from a serverless.yml with the `php-82` shorthand and
`${bref:layer.php-82}`, invoked through the Invoke API and API Gateway's v2 route."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from tests.e2e.harness import LaminaServer, create_function, invoke, wait_until

from lamina.runtimes.php import find_php

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(find_php() is None, reason="needs PHP's CLI (php8.2-cli)"),
]

BREF_LAYER = "arn:aws:lambda:us-east-1:534081306603:layer:php-82:60"

APP = """<?php
use Bref\\Context\\Context;

require_once __DIR__ . '/src/Counter.php';

return function ($event, Context $context) {
    static $calls = 0;
    $calls++;
    switch ($event['do'] ?? '') {
        case 'throw':
            throw new InvalidArgumentException('no such order: ' . ($event['id'] ?? '?'));
        case 'fatal':
            return undefined_function();
        case 'memory':
            ini_set('memory_limit', '32M');
            $all = [];
            while (true) { $all[] = str_repeat('x', 1 << 20); }
        case 'sleep':
            sleep(30);
        case 'big':
            return str_repeat('b', 5 * 1024 * 1024);
        case 'image':
            return ['isBase64Encoded' => true, 'body' => base64_encode(random_bytes(64))];
        case 'bytes':
            return "\\xc3\\x28";
    }
    echo "handling {$context->getAwsRequestId()}\\n";
    return [
        'event' => $event,
        'calls' => $calls,
        'counter' => App\\Counter::NAME,
        'pid' => getmypid(),
        'requestId' => $context->getAwsRequestId(),
        'remaining' => $context->getRemainingTimeInMillis(),
        'arn' => $context->getInvokedFunctionArn(),
        'trace' => $context->getTraceId(),
        'env' => getenv(),
    ];
};
"""

FILES = {
    "index.php": APP,
    "src/Counter.php": "<?php namespace App; final class Counter { const NAME = 'counter'; }",
}


def _create(lamina: LaminaServer, name: str = "php", **settings: object) -> None:
    create_function(
        lamina,
        name,
        FILES,
        runtime="provided.al2",
        handler="index.php",
        Layers=[BREF_LAYER],
        Timeout=3,
        **settings,
    )


def test_a_php_function_answers_with_bref_s_context_and_environment(
    lamina: LaminaServer,
) -> None:
    _create(lamina, Environment={"Variables": {"GREETING": "hello"}})

    first = invoke(lamina, "php", {"name": "ada"})
    second = invoke(lamina, "php", {"name": "bob"})

    assert "FunctionError" not in first
    body = json.loads(first["Body"])
    assert body["event"] == {"name": "ada"}
    assert body["counter"] == "counter"
    assert body["arn"] == "arn:aws:lambda:us-east-1:000000000000:function:php"
    assert body["trace"].startswith("Root=1-")
    assert 0 < body["remaining"] <= 3000
    env = body["env"]
    assert env["GREETING"] == "hello"
    assert env["BREF_PING_DISABLE"] == "1"
    assert env["LAMBDA_REQUEST_ID"] == body["requestId"]
    assert env["_HANDLER"] == "index.php"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "php"
    assert re.fullmatch(r"127\.0\.0\.1:\d+", env["AWS_LAMBDA_RUNTIME_API"])
    assert "AWS_EXECUTION_ENV" not in env
    assert not [k for k in env if k.startswith("LAMINA_")]
    again = json.loads(second["Body"])
    assert (again["calls"], again["pid"]) == (2, body["pid"])  # one warm worker
    assert len(lamina.environments("php")) == 1

    def logged() -> bool:
        return f"handling {body['requestId']}" in lamina.logs("php")

    wait_until(logged)


def test_an_exception_is_an_unhandled_error_logged_like_bref(lamina: LaminaServer) -> None:
    _create(lamina)
    warm = json.loads(invoke(lamina, "php", {})["Body"])

    response = invoke(lamina, "php", {"do": "throw", "id": 7})
    after = json.loads(invoke(lamina, "php", {})["Body"])

    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Body"])
    assert error["errorType"] == "InvalidArgumentException"
    assert error["errorMessage"] == "no such order: 7"
    assert error["stackTrace"][-1].endswith("{main}")
    request_id = response["ResponseMetadata"]["RequestId"]

    def logged() -> list[str]:
        prefix = f"{request_id}\tInvoke Error\t"
        return [line for line in lamina.logs("php") if line.startswith(prefix)]

    line = wait_until(logged)[0]
    assert json.loads(line.split("\t", 2)[2])["errorMessage"] == "no such order: 7"
    assert after["calls"] == 1 and after["pid"] != warm["pid"]  # a fresh PHP, as with Bref
    assert len(lamina.environments("php")) == 1


@pytest.mark.parametrize(
    ("event", "error_type", "message"),
    [
        ({"do": "fatal"}, "Error", "Call to undefined function undefined_function()"),
        ({"do": "memory"}, "E_ERROR", "Allowed memory size of 33554432 bytes exhausted"),
    ],
)
def test_a_fatal_error_is_an_error_payload_and_a_fresh_php_follows(
    lamina: LaminaServer, event: dict[str, str], error_type: str, message: str
) -> None:
    _create(lamina)
    warm = json.loads(invoke(lamina, "php", {})["Body"])

    response = invoke(lamina, "php", event)
    after = json.loads(invoke(lamina, "php", {})["Body"])

    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Body"])
    assert error["errorType"] == error_type
    assert error["errorMessage"].startswith(message)
    assert (after["calls"], after["pid"] != warm["pid"]) == (1, True)


def test_a_php_timeout_replaces_the_environment(lamina: LaminaServer) -> None:
    _create(lamina, name="slow")
    invoke(lamina, "slow", {})
    before = lamina.environments("slow")

    response = invoke(lamina, "slow", {"do": "sleep"})
    after = json.loads(invoke(lamina, "slow", {})["Body"])

    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Body"])["errorType"] == "Sandbox.Timedout"
    now = lamina.environments("slow")
    assert len(now) == 1 and now[0]["pid"] != before[0]["pid"]
    assert after["calls"] == 1


def test_large_and_binary_responses(lamina: LaminaServer) -> None:
    _create(lamina, MemorySize=512)

    big = invoke(lamina, "php", {"do": "big"})
    image = json.loads(invoke(lamina, "php", {"do": "image"})["Body"])
    broken = invoke(lamina, "php", {"do": "bytes"})

    assert json.loads(big["Body"]) == "b" * 5 * 1024 * 1024
    assert len(base64.b64decode(image["body"])) == 64
    assert broken["FunctionError"] == "Unhandled"
    message = json.loads(broken["Body"])["errorMessage"]
    assert message.startswith("The Lambda response cannot be encoded to JSON.")


def test_vendor_autoload_is_loaded_before_the_handler(lamina: LaminaServer) -> None:
    files = {
        "vendor/autoload.php": "<?php define('VENDOR_FIRST', true);",
        "index.php": "<?php $first = defined('VENDOR_FIRST'); return fn () => $first;",
    }
    create_function(
        lamina, "vendor", files, runtime="provided.al2023", handler="index.php",
        Layers=["arn:aws:lambda:eu-west-1:873528684822:layer:php-82:12"],
    )  # fmt: skip

    assert json.loads(invoke(lamina, "vendor", {})["Body"]) is True


SERVICE = """\
service: shop
provider:
  name: aws
  runtime: php-82
  timeout: 5
functions:
  api:
    handler: api.php
    events:
      - httpApi: 'GET /orders/{id}'
  worker:
    handler: worker.php
    runtime: provided.al2
    layers:
      - ${bref:layer.php-82}
  future:
    handler: worker.php
    runtime: php-85
"""

TYPED_HTTP = """<?php
use Bref\\Context\\Context;
use Bref\\Event\\Http\\HttpHandler;
use Bref\\Event\\Http\\HttpRequestEvent;
use Bref\\Event\\Http\\HttpResponse;

return new class extends HttpHandler {
    public function handleRequest(HttpRequestEvent $event, Context $context): HttpResponse
    {
        $body = json_encode([
            'id' => $event->getPathParameters()['id'],
            'query' => $event->getQueryParameters(),
            'v2' => $event->isFormatV2(),
        ]);
        return new HttpResponse($body, ['content-type' => 'application/json', 'x-order' => 'yes']);
    }
};
"""


def test_a_serverless_yml_with_php_shorthands_deploys_and_serves_http(
    lamina: LaminaServer, tmp_path: Path
) -> None:
    service = tmp_path / "shop"
    service.mkdir()
    (service / "serverless.yml").write_text(SERVICE)
    (service / "api.php").write_text(TYPED_HTTP)
    (service / "worker.php").write_text("<?php return fn ($e) => ['worked' => $e['job']];")
    env = {**os.environ, "LAMINA_ENDPOINT": lamina.control_url, "NO_COLOR": "1"}

    deployed = subprocess.run(
        [sys.executable, "-m", "lamina", "deploy"],
        cwd=service,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    # Said once: this machine has no PHP 8.5, the function runs on the PHP it has.
    assert deployed.stderr.count("functions shop-dev-future ask for PHP 8.5") == 1
    assert "sudo apt-get install php8.5-cli" in deployed.stderr
    config = lamina.client().get_function(FunctionName="shop-dev-api")["Configuration"]
    assert config["Runtime"] == "provided.al2"
    assert [layer["Arn"] for layer in config["Layers"]] == ["arn:lamina:runtime:php-82"]
    worker = invoke(lamina, "shop-dev-worker", {"job": "mail"})
    assert json.loads(worker["Body"]) == {"worked": "mail"}
    future = invoke(lamina, "shop-dev-future", {"job": "later"})
    assert json.loads(future["Body"]) == {"worked": "later"}
    url = f"{lamina.data_url}/shop/dev/orders/42?page=2"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=30) as answer:
        assert answer.status == 200
        assert answer.headers["X-Order"] == "yes"
        assert json.loads(answer.read()) == {"id": "42", "query": {"page": "2"}, "v2": True}
