"""Bref's typed HTTP handlers on the PHP runtime: Lamina's own minimal Bref classes (for apps
that do not ship Bref), PSR-15 handlers, and an app that ships its own Bref."""

from __future__ import annotations

import base64
import json

import pytest
from tests.runtimes.test_php_runtime import PHP, PhpRuntimes, runtimes
from tests.wire.test_events_golden import GOLDEN

pytestmark = pytest.mark.skipif(PHP is None, reason="needs PHP's CLI (php8.2-cli)")

__all__ = ["runtimes"]  # the fixture, shared with the runtime's tests

ECHO_HANDLER = """<?php
use Bref\\Context\\Context;
use Bref\\Event\\Http\\HttpHandler;
use Bref\\Event\\Http\\HttpRequestEvent;
use Bref\\Event\\Http\\HttpResponse;

return new class extends HttpHandler {
    public function handleRequest(HttpRequestEvent $event, Context $context): HttpResponse
    {
        $seen = [
            'method' => $event->getMethod(),
            'path' => $event->getPath(),
            'uri' => $event->getUri(),
            'query' => $event->getQueryParameters(),
            'queryString' => $event->getQueryString(),
            'headers' => $event->getHeaders(),
            'cookies' => $event->getCookies(),
            'body' => $event->getBody(),
            'contentType' => $event->getContentType(),
            'serverName' => $event->getServerName(),
            'sourceIp' => $event->getSourceIp(),
            'pathParameters' => $event->getPathParameters(),
            'v2' => $event->isFormatV2(),
            'protocolVersion' => $event->getProtocolVersion(),
            'requestId' => $context->getAwsRequestId(),
        ];
        return new HttpResponse(json_encode($seen), [
            'content-type' => 'application/json',
            'set-cookie' => ['a=1; Path=/', 'b=2'],
            'x-many' => ['one', 'two'],
        ], 201);
    }
};
"""

V2_EVENT = {
    "version": "2.0",
    "routeKey": "POST /orders/{id}",
    "rawPath": "/orders/42",
    "rawQueryString": "a.b=1&list[]=x&list[]=y&q=caf%C3%A9",
    "cookies": ["session=abc", "theme=dark%20blue"],
    "headers": {"host": "shop.example.com", "content-type": "text/plain"},
    "requestContext": {
        "http": {"method": "POST", "path": "/orders/42", "sourceIp": "203.0.113.7"},
        "requestId": "id",
    },
    "pathParameters": {"id": "42"},
    "body": base64.b64encode(b"hello \xe2\x9c\x93").decode(),
    "isBase64Encoded": True,
}


def test_an_http_handler_gets_a_typed_v2_request_and_answers_in_v2_format(
    runtimes: PhpRuntimes,
) -> None:
    runtimes.write("index.php", ECHO_HANDLER)
    runtime = runtimes.start()

    answer = runtime.api.result(V2_EVENT, request_id="r-1")

    assert answer["statusCode"] == 201
    assert answer["cookies"] == ["a=1; Path=/", "b=2"]
    assert answer["headers"] == {"Content-Type": "application/json", "X-Many": "one, two"}
    assert answer["isBase64Encoded"] is False
    seen = json.loads(answer["body"])
    assert seen["method"] == "POST"
    assert (seen["path"], seen["uri"]) == (
        "/orders/42",
        "/orders/42?a.b=1&list%5B0%5D=x&list%5B1%5D=y&q=caf%C3%A9",
    )
    assert seen["query"] == {"a_b": "1", "list": ["x", "y"], "q": "café"}
    assert seen["cookies"] == {"session": "abc", "theme": "dark blue"}
    assert seen["headers"]["cookie"] == ["session=abc; theme=dark%20blue"]
    assert seen["headers"]["content-length"] == ["9"]
    assert (seen["body"], seen["contentType"]) == ("hello ✓", "text/plain")
    assert (seen["serverName"], seen["sourceIp"]) == ("shop.example.com", "203.0.113.7")
    assert seen["pathParameters"] == {"id": "42"}
    assert (seen["v2"], seen["protocolVersion"], seen["requestId"]) == (True, "1.1", "r-1")


def test_an_http_handler_answers_a_rest_event_in_its_format(runtimes: PhpRuntimes) -> None:
    runtimes.write("index.php", ECHO_HANDLER)
    runtime = runtimes.start()
    vector = GOLDEN / "apigw_v1" / "event-path-parameters-repeated-headers-and-query.json"
    event = json.loads(vector.read_text())["event"]  # as Lamina's gateway builds it

    answer = runtime.api.result(event)

    # Payload 1.0 with multiValueHeaders in: every value of every header out.
    assert answer["statusCode"] == 201
    assert answer["multiValueHeaders"]["X-Many"] == ["one", "two"]
    assert answer["multiValueHeaders"]["Set-Cookie"] == ["a=1; Path=/", "b=2"]
    seen = json.loads(answer["body"])
    assert (seen["method"], seen["path"], seen["v2"]) == ("GET", "/users/a%20b", False)
    assert seen["headers"]["x-tag"] == ["one", "two"]
    assert seen["sourceIp"] == event["requestContext"]["identity"]["sourceIp"]


def test_binary_responses_are_base64_when_bref_binary_responses_is_set(
    runtimes: PhpRuntimes,
) -> None:
    runtimes.write(
        "index.php",
        """<?php
        use Bref\\Event\\Http\\{HttpHandler, HttpRequestEvent, HttpResponse};
        use Bref\\Context\\Context;
        return new class extends HttpHandler {
            public function handleRequest(HttpRequestEvent $e, Context $c): HttpResponse {
                $png = "\\x89PNG\\r\\n\\x1a\\n\\x00\\xff";
                return new HttpResponse($png, ['content-type' => 'image/png']);
            }
        };
        """,
    )
    runtime = runtimes.start(env={"BREF_BINARY_RESPONSES": "1"})

    answer = runtime.api.result(V2_EVENT)

    assert answer["isBase64Encoded"] is True
    assert base64.b64decode(answer["body"]) == b"\x89PNG\r\n\x1a\n\x00\xff"


def test_warmers_and_events_that_are_not_http(runtimes: PhpRuntimes) -> None:
    runtimes.write("index.php", ECHO_HANDLER)
    runtime = runtimes.start()

    warm = runtime.api.result({"warmer": True})
    error = runtime.api.result({"Records": []})

    assert warm == ["Lambda is warm"]
    assert error["errorType"] == "Bref\\Event\\InvalidLambdaEvent"
    assert error["errorMessage"].startswith(
        "This handler expected to be invoked with a API Gateway or ALB event."
    )


PSR_VENDOR = {
    # Just enough of the PSR interfaces and of nyholm/psr7 for the bridge.
    "vendor/autoload.php": """<?php
        spl_autoload_register(function ($class) {
            $file = __DIR__ . '/src/' . str_replace('\\\\', '/', $class) . '.php';
            if (is_file($file)) require $file;
        });
    """,
    "vendor/src/Psr/Http/Server/RequestHandlerInterface.php": """<?php
        namespace Psr\\Http\\Server;
        interface RequestHandlerInterface {
            public function handle(\\Psr\\Http\\Message\\ServerRequestInterface $request);
        }
    """,
    "vendor/src/Psr/Http/Message/ServerRequestInterface.php": """<?php
        namespace Psr\\Http\\Message;
        interface ServerRequestInterface {}
    """,
    "vendor/src/Nyholm/Psr7/ServerRequest.php": """<?php
        namespace Nyholm\\Psr7;
        final class ServerRequest implements \\Psr\\Http\\Message\\ServerRequestInterface {
            public $attributes = [];
            public $cookies = [];
            public $query = [];
            public $parsed = null;
            public function __construct(
                public string $method, public string $uri, public array $headers,
                public string $body, public string $version, public array $server
            ) {}
            public function withAttribute($name, $value) {
                $copy = clone $this; $copy->attributes[$name] = $value; return $copy;
            }
            public function withCookieParams(array $c) { return $this->with('cookies', $c); }
            public function withQueryParams(array $q) { return $this->with('query', $q); }
            public function withParsedBody($p) { return $this->with('parsed', $p); }
            private function with($f, $v) { $x = clone $this; $x->$f = $v; return $x; }
        }
    """,
    "vendor/src/Nyholm/Psr7/Response.php": """<?php
        namespace Nyholm\\Psr7;
        final class Response {
            public function __construct(
                private int $status, private array $headers, private string $body
            ) {}
            public function getStatusCode() { return $this->status; }
            public function getHeaders() { return $this->headers; }
            public function getBody() { return new Stream($this->body); }
        }
    """,
    "vendor/src/Nyholm/Psr7/Stream.php": """<?php
        namespace Nyholm\\Psr7;
        final class Stream {
            private $read = false;
            public function __construct(private string $text) {}
            public function isSeekable() { return true; }
            public function rewind() { $this->read = false; }
            public function getContents() { return $this->text; }
        }
    """,
}

PSR_HANDLER = """<?php
use Psr\\Http\\Message\\ServerRequestInterface;
use Psr\\Http\\Server\\RequestHandlerInterface;

return new class implements RequestHandlerInterface {
    public function handle(ServerRequestInterface $request)
    {
        return new Nyholm\\Psr7\\Response(202, ['Content-Type' => ['text/plain']], json_encode([
            $request->method, $request->uri, $request->body, $request->server['REMOTE_ADDR'],
            $request->attributes['id'], $request->query, $request->cookies,
            get_class($request->attributes['lambda-context']),
        ]));
    }
};
"""


def test_a_psr_15_handler_gets_a_psr_7_request_from_the_app_s_implementation(
    runtimes: PhpRuntimes,
) -> None:
    for path, source in PSR_VENDOR.items():
        runtimes.write(path, source)
    runtimes.write("index.php", PSR_HANDLER)
    runtime = runtimes.start()

    answer = runtime.api.result(V2_EVENT)

    assert (answer["statusCode"], answer["headers"]) == (202, {"Content-Type": "text/plain"})
    assert json.loads(answer["body"]) == [
        "POST",
        "/orders/42?a.b=1&list%5B0%5D=x&list%5B1%5D=y&q=caf%C3%A9",
        "hello ✓",
        "203.0.113.7",
        "42",
        {"a_b": "1", "list": ["x", "y"], "q": "café"},
        {"session": "abc", "theme": "dark blue"},
        "Bref\\Context\\Context",
    ]


def test_a_psr_15_handler_without_a_psr_7_implementation_says_what_to_install(
    runtimes: PhpRuntimes,
) -> None:
    for path, source in PSR_VENDOR.items():
        if "Nyholm" not in path:
            runtimes.write(path, source)
    runtimes.write("index.php", PSR_HANDLER)
    runtime = runtimes.start()

    error = runtime.api.result(V2_EVENT)

    assert error["errorType"] == "RuntimeException"
    assert "require bref/bref (or nyholm/psr7, or guzzlehttp/psr7)" in error["errorMessage"]


def test_an_app_that_ships_bref_gets_its_container_and_hooks(runtimes: PhpRuntimes) -> None:
    runtimes.write(
        "vendor/autoload.php",
        """<?php
        namespace Bref;
        final class Bref {
            public static $log = [];
            public static function getContainer() {
                return new class {
                    public function get($id) {
                        Bref::$log[] = "get $id";
                        return fn ($event) => ['handler' => $id, 'log' => Bref::$log];
                    }
                };
            }
            public static function triggerHooks(string $name): void { self::$log[] = $name; }
        }
        """,
    )
    runtime = runtimes.start("App\\Handler\\Orders")

    answer = runtime.api.result({})

    assert answer == {
        "handler": "App\\Handler\\Orders",
        "log": ["beforeStartup", "get App\\Handler\\Orders", "beforeInvoke"],
    }
