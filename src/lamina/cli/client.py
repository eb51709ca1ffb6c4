"""A small synchronous client for Lamina's control API (Lambda's REST API plus `/lamina/v1`).

It speaks the wire shapes boto3 speaks and turns error responses into `ControlApiError`
(the AWS error code, the message and the HTTP status) and connection failures into
`ControlApiUnreachable`, so that commands can report either in one line.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict, cast

DEFAULT_ENDPOINT = "http://127.0.0.1:8081"
API = "/2015-03-31/functions"
REQUEST_TIMEOUT = 30.0
# A synchronous invocation may run for Lambda's longest timeout, 900 seconds.
INVOKE_TIMEOUT = 960.0

InvocationType = Literal["RequestResponse", "Event", "DryRun"]


class ControlApiError(Exception):
    """An error answer of the control API, as `x-amzn-ErrorType` and the JSON body give it."""

    def __init__(self, code: str, message: str, status: int, reason: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.reason = reason


class ControlApiUnreachable(Exception):
    def __init__(self, endpoint: str, reason: object) -> None:
        if isinstance(reason, ConnectionRefusedError):
            message = f"cannot reach Lamina at {endpoint} (is `lamina up` running?)"
        else:
            message = f"cannot reach Lamina at {endpoint} ({reason})"
        super().__init__(message)
        self.endpoint = endpoint
        self.reason = reason


class EnvironmentShape(TypedDict, total=False):
    Variables: dict[str, str]


class LayerShape(TypedDict, total=False):
    Arn: str
    CodeSize: int


class FunctionConfiguration(TypedDict, total=False):
    FunctionName: str
    FunctionArn: str
    Runtime: str
    Handler: str
    CodeSize: int
    CodeSha256: str
    Description: str
    Timeout: int
    MemorySize: int
    LastModified: str
    Version: str
    Environment: EnvironmentShape
    Layers: list[LayerShape]
    State: str


class GetFunctionResult(TypedDict):
    Configuration: FunctionConfiguration
    Code: NotRequired[dict[str, Any]]
    Concurrency: NotRequired[dict[str, int]]


class FunctionSettings(TypedDict):
    """The configuration fields CreateFunction and UpdateFunctionConfiguration share."""

    Runtime: str
    Handler: str
    MemorySize: int
    Timeout: int
    Environment: EnvironmentShape
    Layers: list[str]
    Description: str


class LogEventShape(TypedDict):
    id: int
    timestamp: int  # epoch milliseconds
    stream: str
    message: str


class LogsPage(TypedDict):
    events: list[LogEventShape]
    last: int | None


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True, slots=True)
class InvokeResult:
    status: int
    payload: bytes
    function_error: str | None  # X-Amz-Function-Error, e.g. "Unhandled"
    log_tail: str | None  # X-Amz-Log-Result, decoded
    executed_version: str | None
    request_id: str | None


def _error_from(status: int, headers: dict[str, str], body: bytes) -> ControlApiError:
    data: Any = None
    with contextlib.suppress(ValueError):
        data = json.loads(body) if body else None
    fields = data if isinstance(data, dict) else {}
    # botocore reads the code from this header first; AWS may append `:<url>` to it.
    # (The body's "Type" is only the fault, User or Service.)
    code = headers.get("x-amzn-errortype", "").split(":", 1)[0]
    if not code:
        type_field = fields.get("__type")
        code = type_field if isinstance(type_field, str) and type_field else f"HTTP {status}"
    message = fields.get("Message") or fields.get("message")
    if not isinstance(message, str):
        message = body.decode("utf-8", "replace").strip()[:200] or "(no message)"
    reason = fields.get("Reason")
    return ControlApiError(code, message, status, reason if isinstance(reason, str) else None)


class ControlClient:
    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, *, timeout: float = REQUEST_TIMEOUT):
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        # Proxies from the environment (http_proxy) must not capture calls to a local Lamina.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __repr__(self) -> str:
        return f"<ControlClient {self.endpoint}>"

    def call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        url = self.endpoint + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with self._opener.open(request, timeout=timeout or self.timeout) as answer:
                return Response(
                    answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
                )
        except urllib.error.HTTPError as exc:
            error_headers = {k.lower(): v for k, v in exc.headers.items()}
            raise _error_from(exc.code, error_headers, exc.read()) from None
        except urllib.error.URLError as exc:
            raise ControlApiUnreachable(self.endpoint, exc.reason) from None
        except TimeoutError:
            raise ControlApiUnreachable(self.endpoint, "timed out") from None
        except (OSError, http.client.HTTPException) as exc:
            raise ControlApiUnreachable(self.endpoint, exc) from None

    def call_json(
        self,
        method: str,
        path: str,
        payload: object | None = None,
        *,
        query: dict[str, str] | None = None,
    ) -> Any:
        body = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        return self.call(method, path, query=query, body=body, headers=headers).json()

    # --- Lambda API ------------------------------------------------------------------------

    def list_functions(self) -> list[FunctionConfiguration]:
        functions: list[FunctionConfiguration] = []
        query: dict[str, str] = {}
        while True:
            page = self.call_json("GET", f"{API}/", query=query) or {}
            functions.extend(page.get("Functions", []))
            marker = page.get("NextMarker")
            if not marker:
                return functions
            query = {"Marker": marker}

    def get_function(self, name: str) -> GetFunctionResult:
        return cast(GetFunctionResult, self.call_json("GET", f"{API}/{_quote(name)}"))

    def find_function(self, name: str) -> GetFunctionResult | None:
        try:
            return self.get_function(name)
        except ControlApiError as exc:
            if exc.code == "ResourceNotFoundException":
                return None
            raise

    def create_function(
        self, name: str, zip_base64: str, settings: FunctionSettings
    ) -> FunctionConfiguration:
        request = {"FunctionName": name, "Code": {"ZipFile": zip_base64}, **settings}
        return cast(FunctionConfiguration, self.call_json("POST", API, request))

    def update_function_code(self, name: str, zip_base64: str) -> FunctionConfiguration:
        return cast(
            FunctionConfiguration,
            self.call_json("PUT", f"{API}/{_quote(name)}/code", {"ZipFile": zip_base64}),
        )

    def update_function_configuration(
        self, name: str, settings: FunctionSettings
    ) -> FunctionConfiguration:
        return cast(
            FunctionConfiguration,
            self.call_json("PUT", f"{API}/{_quote(name)}/configuration", settings),
        )

    def delete_function(self, name: str) -> None:
        self.call("DELETE", f"{API}/{_quote(name)}")

    def invoke(
        self,
        name: str,
        payload: bytes,
        *,
        qualifier: str | None = None,
        invocation_type: InvocationType = "RequestResponse",
        log_tail: bool = False,
    ) -> InvokeResult:
        headers = {"Content-Type": "application/json", "X-Amz-Invocation-Type": invocation_type}
        if log_tail:
            headers["X-Amz-Log-Type"] = "Tail"
        answer = self.call(
            "POST",
            f"{API}/{_quote(name)}/invocations",
            query={"Qualifier": qualifier} if qualifier else None,
            body=payload,
            headers=headers,
            timeout=INVOKE_TIMEOUT,
        )
        log = answer.headers.get("x-amz-log-result")
        return InvokeResult(
            status=answer.status,
            payload=answer.body,
            function_error=answer.headers.get("x-amz-function-error"),
            log_tail=_decode_log(log) if log else None,
            executed_version=answer.headers.get("x-amz-executed-version"),
            request_id=answer.headers.get("x-amzn-requestid"),
        )

    # --- Lamina API ------------------------------------------------------------------------

    def health(self) -> bool:
        data = self.call_json("GET", "/health")
        return isinstance(data, dict) and data.get("status") == "ok"

    def logs(
        self, function: str, *, since: int | None = None, after: int | None = None
    ) -> LogsPage:
        query = {"function": function}
        if since is not None:
            query["since"] = str(since)
        if after is not None:
            query["after"] = str(after)
        data = self.call_json("GET", "/lamina/v1/logs", query=query) or {}
        return {"events": data.get("events", []), "last": data.get("last")}


def _quote(name: str) -> str:
    # As the AWS SDKs do: `my-fn:prod` travels as `my-fn%3Aprod`.
    return urllib.parse.quote(name, safe="")


def _decode_log(value: str) -> str:
    try:
        return base64.b64decode(value).decode("utf-8", "replace")
    except ValueError:
        return value
