"""PHP-FPM functions end to end: a real `lamina up`, real php-fpm, Bref's layer ARN.

One server for the module: a PHP app (a small front controller routing on REQUEST_URI) is
deployed three times, behind an HTTP API (payload 2.0), a REST API and an ALB, and also
created through the Lambda API and invoked with boto3 using events of each kind.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import http.client
import json
import struct
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.harness import LaminaServer, create_function, invoke, make_zip, wait_until

from lamina.core.routes import Route
from lamina.wire.deployment import DeploymentSpec, FunctionSpec, to_json

pytestmark = pytest.mark.e2e

FPM_LAYER = "arn:aws:lambda:us-east-1:534081306603:layer:php-82-fpm:60"


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", pixels)
        + (chunk(b"IEND", b""))
    )


PNG = _png()
FRONT_CONTROLLER = r"""<?php
// A tiny framework: one front controller routing on the request's path.
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$routes = [
    '#^/$#' => fn() => print('Hello from PHP-FPM'),
    '#^/hello$#' => fn() => print('Hello from PHP-FPM'),
    '#^/users/(\d+)$#' => fn($id) => print(json_encode(['user' => (int) $id])),
    '#^/server$#' => function () {
        header('Content-Type: application/json');
        header('X-Custom: yes');
        $keys = ['REQUEST_URI', 'PATH_INFO', 'QUERY_STRING', 'REQUEST_METHOD', 'SERVER_NAME',
                 'SERVER_PORT', 'REMOTE_ADDR', 'HTTP_X_FORWARDED_FOR', 'HTTP_X_TEST',
                 'CONTENT_TYPE', 'LAMBDA_REQUEST_CONTEXT', 'LAMBDA_INVOCATION_CONTEXT'];
        echo json_encode(array_intersect_key($_SERVER, array_flip($keys)));
    },
    '#^/cookies$#' => function () {
        setcookie('first', '1');
        setcookie('second', '2', ['path' => '/', 'httponly' => true]);
        header('Set-Cookie: third=3', false);
        echo json_encode($_COOKIE);
    },
    '#^/redirect$#' => fn() => header('Location: /target'),
    '#^/query$#' => fn() => print(json_encode($_GET)),
    '#^/form$#' => fn() => print(json_encode($_POST)),
    '#^/upload$#' => function () {
        $out = [];
        foreach ($_FILES as $name => $file) {
            $out[$name] = [$file['name'], $file['size'], md5_file($file['tmp_name'])];
        }
        echo json_encode(['files' => $out, 'post' => $_POST]);
    },
    '#^/png$#' => function () {
        header('Content-Type: image/png');
        readfile(__DIR__ . '/logo.png');
    },
    '#^/large$#' => fn() => print(str_repeat('0123456789abcdef', 131072)),
    '#^/sleep$#' => fn() => sleep(30),
    '#^/fatal$#' => fn() => undefined_function(),
    '#^/log$#' => function () {
        error_log('logged from php');
        echo 'logged';
    },
    '#^/instance$#' => function () {
        // Each execution environment has its own /tmp: a new php-fpm gets a new token.
        $file = sys_get_temp_dir() . '/instance';
        if (!is_file($file)) { file_put_contents($file, bin2hex(random_bytes(8))); }
        readfile($file);
    },
];
foreach ($routes as $pattern => $action) {
    if (preg_match($pattern, $path, $m)) {
        $action(...array_slice($m, 1));
        return;
    }
}
http_response_code(404);
echo "no route for $path";
"""
BUNDLE = make_zip({"public/index.php": FRONT_CONTROLLER, "public/logo.png": PNG})


# HTTP without redirects or header folding


def fetch(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, list[tuple[str, str]], bytes]:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


def all_of(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in headers if k.lower() == name]


def control(server: LaminaServer, method: str, path: str, body: bytes | None = None) -> Any:
    request = urllib.request.Request(f"{server.control_url}{path}", data=body, method=method)
    with urllib.request.urlopen(request, timeout=30) as answer:
        data = answer.read()
        return json.loads(data) if data else None


def deploy(server: LaminaServer, stage: str, routes: tuple[Route, ...], timeout: int) -> str:
    sha = hashlib.sha256(BUNDLE).hexdigest()
    try:
        control(server, "PUT", f"/lamina/v1/bundles/{sha}", BUNDLE)
    except urllib.error.HTTPError as exc:  # already uploaded
        assert exc.code == 409, exc
    name = f"fpm-{stage}-web"
    spec = DeploymentSpec(
        service="fpm",
        stage=stage,
        region="us-east-1",
        functions=(
            FunctionSpec(
                key="web",
                name=name,
                runtime="provided.al2",
                handler="public/index.php",
                code_sha256=sha,
                timeout=timeout,
                layers=(FPM_LAYER,),
                routes=tuple(
                    dataclasses.replace(r, service="fpm", stage=stage, function_name=name)
                    for r in routes
                ),
            ),
        ),
    )
    document = json.dumps(to_json(spec)).encode()
    control(server, "POST", "/lamina/v1/deployments", document)
    return f"{server.data_url}/fpm/{stage}"


def _route(kind: Any, **fields: Any) -> Route:
    return Route(kind=kind, service="-", stage="-", function_name="-", **fields)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaminaServer]:
    home = tmp_path_factory.mktemp("fpm") / "home"
    lamina = LaminaServer(home, {})
    lamina.start()
    try:
        yield lamina
    finally:
        lamina.stop()
        print(f"--- {lamina.log_path.name} ---\n{lamina.log()}")


@pytest.fixture(scope="module")
def sites(server: LaminaServer) -> dict[str, str]:
    return {
        "v2": deploy(server, "v2", (_route("httpApi"),), timeout=3),
        "rest": deploy(
            server, "rest", (_route("http", path="/"), _route("http", path="/{proxy+}")), 3
        ),
        "alb": deploy(server, "alb", (_route("alb", priority=1),), timeout=3),
    }


# through the gateway


@pytest.mark.parametrize("kind", ["v2", "rest", "alb"])
def test_a_plain_page_and_a_framework_route(sites: dict[str, str], kind: str) -> None:
    status, headers, body = fetch(f"{sites[kind]}/hello")
    assert (status, body) == (200, b"Hello from PHP-FPM")
    assert all_of(headers, "content-type") == ["text/html; charset=UTF-8"]
    assert fetch(f"{sites[kind]}/users/42")[2] == b'{"user":42}'
    status, _, body = fetch(f"{sites[kind]}/nowhere")
    assert (status, body) == (404, b"no route for /nowhere")


def test_what_php_sees_of_a_request(sites: dict[str, str]) -> None:
    status, headers, body = fetch(
        f"{sites['v2']}/server?b=2&a[]=1&a[]=x%20y", headers={"X-Test": "t1"}
    )
    assert status == 200 and all_of(headers, "x-custom") == ["yes"]
    seen = json.loads(body)
    assert seen["REQUEST_URI"] == "/server?b=2&a%5B0%5D=1&a%5B1%5D=x+y"
    assert (seen["PATH_INFO"], seen["REQUEST_METHOD"]) == ("/server", "GET")
    assert (seen["REMOTE_ADDR"], seen["SERVER_NAME"].split(":")[0]) == ("127.0.0.1", "127.0.0.1")
    assert seen["HTTP_X_FORWARDED_FOR"] == "127.0.0.1" and seen["HTTP_X_TEST"] == "t1"
    assert json.loads(seen["LAMBDA_REQUEST_CONTEXT"])["http"]["path"] == "/server"
    assert json.loads(seen["LAMBDA_INVOCATION_CONTEXT"])["invokedFunctionArn"].endswith(
        ":function:fpm-v2-web:1"  # the version the deployment published
    )
    rest = json.loads(fetch(f"{sites['rest']}/server")[2])
    assert rest["PATH_INFO"] == "/server"  # the stage is stripped, as Bref wants
    assert json.loads(rest["LAMBDA_REQUEST_CONTEXT"])["stage"] == "rest"


@pytest.mark.parametrize("kind", ["v2", "rest"])
def test_cookies_in_and_out(sites: dict[str, str], kind: str) -> None:
    status, headers, body = fetch(f"{sites[kind]}/cookies", headers={"Cookie": "in=1; more=2"})
    assert status == 200
    assert all_of(headers, "set-cookie") == [
        "first=1",
        "second=2; path=/; HttpOnly",
        "third=3",
    ]
    assert json.loads(body) == {"in": "1", "more": "2"}


def test_alb_without_multi_value_headers_keeps_the_last_cookie(sites: dict[str, str]) -> None:
    _, headers, _ = fetch(f"{sites['alb']}/cookies")
    assert all_of(headers, "set-cookie") == ["third=3"]  # Bref's single-value `headers`


@pytest.mark.parametrize("kind", ["v2", "rest", "alb"])
def test_redirects_and_queries(sites: dict[str, str], kind: str) -> None:
    status, headers, _ = fetch(f"{sites[kind]}/redirect")
    assert (status, all_of(headers, "location")) == (302, ["/target"])
    query = fetch(f"{sites[kind]}/query?name=J%C3%BCrgen&tags[]=a&tags[]=b&x=1+2")[2]
    # Without multi-value headers an ALB passes the last value of a repeated key only.
    tags = ["b"] if kind == "alb" else ["a", "b"]
    assert json.loads(query) == {"name": "Jürgen", "tags": tags, "x": "1 2"}


def test_a_form_post_and_a_file_upload(sites: dict[str, str]) -> None:
    form = b"title=Hello+World&list[]=1&list[]=2"
    status, _, body = fetch(
        f"{sites['v2']}/form",
        "POST",
        form,
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (status, json.loads(body)) == (200, {"title": "Hello World", "list": ["1", "2"]})
    data = bytes(range(256)) * 40
    multipart = (
        b'--XyZ\r\nContent-Disposition: form-data; name="note"\r\n\r\nhi\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="blob.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--XyZ--\r\n"
    )
    for kind in ("v2", "rest", "alb"):
        status, _, body = fetch(
            f"{sites[kind]}/upload",
            "POST",
            multipart,
            {"Content-Type": "multipart/form-data; boundary=XyZ"},
        )
        assert status == 200, body
        assert json.loads(body) == {
            "files": {"file": ["blob.bin", len(data), hashlib.md5(data).hexdigest()]},
            "post": {"note": "hi"},
        }


@pytest.mark.parametrize("kind", ["v2", "rest", "alb"])
def test_binary_and_large_responses(sites: dict[str, str], kind: str) -> None:
    status, headers, body = fetch(f"{sites[kind]}/png")
    assert (status, all_of(headers, "content-type"), body) == (200, ["image/png"], PNG)
    status, _, body = fetch(f"{sites[kind]}/large")
    if kind == "alb":
        assert status == 502  # over an ALB's 1 MB response limit
    else:
        assert (status, len(body)) == (200, 2 * 1024 * 1024)
        assert body[:32] == b"0123456789abcdef" * 2


def test_a_fatal_error_is_a_500(sites: dict[str, str], server: LaminaServer) -> None:
    status, _, body = fetch(f"{sites['v2']}/fatal")
    assert (status, body) == (500, b"")
    fatal = "PHP Fatal error:  Uncaught Error: Call to undefined function undefined_function()"
    wait_until(lambda: any(fatal in x for x in server.logs("fpm-v2-web")))


def test_timeouts_answer_as_the_gateway_does_and_restart_php_fpm(
    sites: dict[str, str], server: LaminaServer
) -> None:
    before = fetch(f"{sites['rest']}/instance")[2]
    status, _, body = fetch(f"{sites['rest']}/sleep")  # Bref gives up 1 s before the 3 s limit
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})
    after = fetch(f"{sites['rest']}/instance")[2]
    assert after != before and len(after) == 16  # a new php-fpm
    wait_until(lambda: any("PHP script timed out" in x for x in server.logs("fpm-rest-web")))
    status, _, _ = fetch(f"{sites['v2']}/sleep")
    assert status == 500  # an HTTP API's answer to a function error


def test_gateway_requests_are_logged_like_invocations(
    sites: dict[str, str], server: LaminaServer
) -> None:
    fetch(f"{sites['alb']}/log")

    def logged() -> list[str]:
        lines = server.logs("fpm-alb-web")
        return lines if any("logged from php" in x for x in lines) else []

    lines = wait_until(logged)
    index = next(i for i, x in enumerate(lines) if "logged from php" in x)
    start = max(i for i in range(index) if lines[i].startswith("START RequestId: "))
    request_id = lines[start].split()[2]
    end = lines.index(f"END RequestId: {request_id}")
    assert start < index < end
    assert lines[end + 1].startswith(f"REPORT RequestId: {request_id}\tDuration: ")


# through the Invoke API

V2_EVENT = {
    "version": "2.0",
    "routeKey": "$default",
    "rawPath": "/cookies",
    "rawQueryString": "",
    "cookies": ["a=1"],
    "headers": {"host": "example.org"},
    "requestContext": {"http": {"method": "GET", "path": "/cookies"}, "stage": "$default"},
    "isBase64Encoded": False,
}
V1_EVENT = {
    "resource": "/{proxy+}",
    "path": "/users/7",
    "httpMethod": "GET",
    "headers": {"Host": "example.org"},
    "multiValueHeaders": {"Host": ["example.org"]},
    "queryStringParameters": None,
    "multiValueQueryStringParameters": None,
    "requestContext": {"stage": "dev", "path": "/dev/users/7", "protocol": "HTTP/1.1"},
    "body": None,
    "isBase64Encoded": False,
}
ALB_EVENT = {
    "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:tg"}},
    "httpMethod": "POST",
    "path": "/form",
    "queryStringParameters": {},
    "headers": {"content-type": "application/x-www-form-urlencoded"},
    "body": base64.b64encode(b"a=1&b=%C3%A9").decode(),
    "isBase64Encoded": True,
}


@pytest.fixture(scope="module")
def function(server: LaminaServer) -> str:
    create_function(
        server,
        "fpm-direct",
        {"public/index.php": FRONT_CONTROLLER, "public/logo.png": PNG},
        runtime="provided.al2",
        handler="public/index.php",
        Layers=[FPM_LAYER],
        Timeout=3,
    )
    return "fpm-direct"


def test_invoke_with_api_gateway_and_alb_events(server: LaminaServer, function: str) -> None:
    v2 = invoke(server, function, V2_EVENT)
    assert "FunctionError" not in v2
    result = json.loads(v2["Body"])
    assert result["statusCode"] == 200 and result["isBase64Encoded"] is False
    assert result["cookies"] == ["first=1", "second=2; path=/; HttpOnly", "third=3"]
    assert json.loads(result["body"]) == {"a": "1"}

    v1 = json.loads(invoke(server, function, V1_EVENT)["Body"])
    assert (v1["statusCode"], v1["body"]) == (200, '{"user":7}')
    assert v1["multiValueHeaders"]["Content-Type"] == ["text/html; charset=UTF-8"]

    alb = json.loads(invoke(server, function, ALB_EVENT)["Body"])
    assert (alb["statusCode"], json.loads(alb["body"])) == (200, {"a": "1", "b": "é"})
    assert "headers" in alb and "multiValueHeaders" not in alb

    png = json.loads(invoke(server, function, {**V2_EVENT, "rawPath": "/png"})["Body"])
    assert png["isBase64Encoded"] is True and base64.b64decode(png["body"]) == PNG


def test_invoke_failures(server: LaminaServer, function: str) -> None:
    other = invoke(server, function, {"Records": []})
    assert other["FunctionError"] == "Unhandled"
    assert json.loads(other["Body"])["errorType"] == "Bref\\Event\\InvalidLambdaEvent"
    slow = invoke(server, function, {**V2_EVENT, "rawPath": "/sleep"})
    assert slow["FunctionError"] == "Unhandled"
    assert json.loads(slow["Body"])["errorType"] == "Sandbox.Timedout"
    assert json.loads(invoke(server, function, V2_EVENT)["Body"])["statusCode"] == 200


def test_a_missing_handler_fails_init(server: LaminaServer, tmp_path: Path) -> None:
    create_function(
        server,
        "fpm-missing",
        {"index.php": "<?php echo 1;"},
        runtime="provided.al2",
        handler="public/index.php",
        Layers=[FPM_LAYER],
    )
    answer = invoke(server, "fpm-missing", V2_EVENT)
    assert answer["FunctionError"] == "Unhandled"
    assert json.loads(answer["Body"])["errorType"] == "Runtime.NoSuchHandler"
