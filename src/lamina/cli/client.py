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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict, cast

DEFAULT_ENDPOINT = "http://127.0.0.1:8081"
API = "/2015-03-31/functions"
LAMINA_API = "/lamina/v1"
REQUEST_TIMEOUT = 30.0
# A synchronous invocation may run for Lambda's longest timeout, 900 seconds.
INVOKE_TIMEOUT = 960.0
# A bundle may be hundreds of MB on a slow link; applying a deployment unpacks them all.
UPLOAD_TIMEOUT = 600.0
DEPLOY_TIMEOUT = 300.0
SSM_CONTENT_TYPE = "application/x-amz-json-1.1"

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


class DeployedFunction(TypedDict, total=False):
    key: str
    name: str
    version: str
    changed: bool


class Endpoint(TypedDict, total=False):
    kind: str  # http | httpApi | alb
    method: str
    path: str
    url: str


class DeploymentShape(TypedDict, total=False):
    """A deployment of a service/stage as `/lamina/v1` answers it; stacks add to it."""

    id: int
    service: str
    stage: str
    region: str
    created: str | float  # ISO 8601, or epoch seconds
    functions: list[DeployedFunction]
    endpoints: list[Endpoint]
    warnings: list[str]  # said once per deploy, e.g. a PHP version the server lacks


class ParameterShape(TypedDict, total=False):
    Name: str
    Type: str  # String | StringList | SecureString
    Value: str
    Version: int


class _UploadBody:
    """Bytes that report how much of them http.client has sent, for a progress bar."""

    def __init__(self, data: bytes, progress: Callable[[int], None]) -> None:
        self._view = memoryview(data)
        self._sent = 0
        self._progress = progress

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size < 0 else self._sent + size
        chunk = bytes(self._view[self._sent : end])
        self._sent += len(chunk)
        if chunk:
            self._progress(len(chunk))
        return chunk


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
        # The JSON protocol (SSM) may qualify it: `com.amazonaws.ssm#ParameterNotFound`.
        if isinstance(type_field, str) and type_field:
            code = type_field.rsplit("#", 1)[-1]
        else:
            code = f"HTTP {status}"
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
        body: bytes | _UploadBody | None = None,
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
        timeout: float | None = None,
    ) -> Any:
        body = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        answer = self.call(method, path, query=query, body=body, headers=headers, timeout=timeout)
        return answer.json()

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

    def update_function_fields(self, name: str, fields: dict[str, object]) -> FunctionConfiguration:
        """UpdateFunctionConfiguration with only the fields that changed."""
        return cast(
            FunctionConfiguration,
            self.call_json("PUT", f"{API}/{_quote(name)}/configuration", fields),
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

    # --- deployments -----------------------------------------------------------------------

    def has_bundle(self, sha256_hex: str) -> bool:
        try:
            self.call("HEAD", f"{LAMINA_API}/bundles/{sha256_hex}")
        except ControlApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def put_bundle(
        self, sha256_hex: str, data: bytes, progress: Callable[[int], None] | None = None
    ) -> None:
        """Upload a code bundle under its SHA-256 (hex); `progress` hears of every block sent."""
        headers = {"Content-Type": "application/zip", "Content-Length": str(len(data))}
        body: bytes | _UploadBody = data if progress is None else _UploadBody(data, progress)
        path = f"{LAMINA_API}/bundles/{sha256_hex}"
        self.call("PUT", path, body=body, headers=headers, timeout=UPLOAD_TIMEOUT)

    def create_deployment(self, document: dict[str, Any]) -> DeploymentShape:
        data = self.call_json("POST", f"{LAMINA_API}/deployments", document, timeout=DEPLOY_TIMEOUT)
        return _deployment(data)

    def get_stack(self, service: str, stage: str) -> dict[str, Any]:
        data = self.call_json("GET", _stack(service, stage))
        return data if isinstance(data, dict) else {}

    def delete_stack(self, service: str, stage: str) -> None:
        self.call("DELETE", _stack(service, stage), timeout=DEPLOY_TIMEOUT)

    def rollback(self, service: str, stage: str, deployment: int | None) -> DeploymentShape:
        body = {} if deployment is None else {"deployment": deployment}
        path = f"{_stack(service, stage)}/rollback"
        return _deployment(self.call_json("POST", path, body, timeout=DEPLOY_TIMEOUT))

    def list_deployments(self, service: str, stage: str) -> list[DeploymentShape]:
        data = self.call_json("GET", f"{_stack(service, stage)}/deployments") or {}
        found = data.get("deployments") if isinstance(data, dict) else None
        return [cast(DeploymentShape, d) for d in found or [] if isinstance(d, dict)]

    # --- SSM API ---------------------------------------------------------------------------

    def get_parameter(self, name: str, *, with_decryption: bool = True) -> ParameterShape | None:
        """SSM GetParameter; None when the parameter does not exist."""
        body = json.dumps({"Name": name, "WithDecryption": with_decryption}).encode()
        headers = {"Content-Type": SSM_CONTENT_TYPE, "X-Amz-Target": "AmazonSSM.GetParameter"}
        try:
            data = self.call("POST", "/", body=body, headers=headers).json()
        except ControlApiError as exc:
            if exc.code == "ParameterNotFound":
                return None
            raise
        found = data.get("Parameter") if isinstance(data, dict) else None
        return cast(ParameterShape, found) if isinstance(found, dict) else None


def _stack(service: str, stage: str) -> str:
    return f"{LAMINA_API}/stacks/{_quote(service)}/{_quote(stage)}"


def _deployment(data: object) -> DeploymentShape:
    """The `deployment` member of an answer (or the answer itself, if it is bare)."""
    if isinstance(data, dict):
        inner = data.get("deployment")
        return cast(DeploymentShape, inner if isinstance(inner, dict) else data)
    return {}


def _quote(name: str) -> str:
    # As the AWS SDKs do: `my-fn:prod` travels as `my-fn%3Aprod`.
    return urllib.parse.quote(name, safe="")


def _decode_log(value: str) -> str:
    try:
        return base64.b64decode(value).decode("utf-8", "replace")
    except ValueError:
        return value
