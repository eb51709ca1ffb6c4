"""Lamina's Python runtime: the loop that runs inside an execution environment.

The platform starts it through its launcher, bootstrap.py::

    <python> -I -S /path/to/bootstrap.py [OPT_ROOT]

with cwd = the task root and AWS's environment variables set (AWS_LAMBDA_RUNTIME_API, _HANDLER,
LAMBDA_TASK_ROOT, AWS_LAMBDA_FUNCTION_*, AWS_LAMBDA_LOG_*, AWS_REGION, ...). OPT_ROOT (default
/opt) is where the function's layers are merged.

What users observe is meant to equal AWS's runtime client (awslambdaric): the handler lookup and
its init errors, the event and context objects, the JSON marshalling, the error payloads, the
`[ERROR]` log line and the root logging handler. Each of those is a port of awslambdaric's code,
so the messages match byte for byte.

Constraints that shape this file:

- It runs in the user's interpreter: standard library only, Python >= 3.8, no `lamina` import.
- -I -S keeps the platform's PYTHON* variables and site-packages away from user code, so sys.path
  is built here.
- Start-up time is a cold start. The code lives in this module rather than in the launcher
  script so that it loads from a cached .pyc (compiling it costs more than everything else the
  runtime does before its first /next). The top level imports only cheap modules; `logging` is
  imported only when user code imports it (a meta path hook then installs the Lambda handler);
  the Runtime API client speaks HTTP/1.1 over `_socket` because http.client drags in ssl and
  email.
- A zygote may import this module, preload, and fork: all per-process set-up is in `main()`.
"""

from __future__ import annotations

import _socket
import os
import sys
import time

_RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))
_API_PREFIX = "/2018-06-01/runtime"
_USER_AGENT = "User-Agent: lamina-python/" + ".".join(map(str, sys.version_info[:3]))
_ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
_XRAY_ERROR_CAUSE_HEADER = "Lambda-Runtime-Function-XRay-Error-Cause"
_XRAY_ERROR_CAUSE_LIMIT = 1024 * 1024
# Lamina's runtime channel (lamina/wire/runtime_api.py): asked for with the first `next`,
# it carries one exchange per invocation (a result and the request for the next invocation,
# then that invocation) in frames: no HTTP to build or parse. Servers other than Lamina's
# answer that `next` as any other.
_CHANNEL_UPGRADE = [("Connection", "Upgrade"), ("Upgrade", "lamina-runtime/1")]
_FRAME_HEAD = 9  # kind, head length, body length (4 bytes each, big-endian)
_REQUEST_ID_HEADER = "Lambda-Runtime-Aws-Request-Id"
_ERROR_LOG_LINE_TERMINATE = "\r"
_ERROR_LOG_INDENT = "\u00a0"
_TEXT_LOG_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n"
_TEXT_LOG_DATEFMT = "%Y-%m-%dT%H:%M:%S"
_JSON_LOG_DATEFMT = "%Y-%m-%dT%H:%M:%SZ"
_UNHANDLED_INIT_WARNING = (
    "LAMBDA_WARNING: "
    "Unhandled exception. "
    "The most likely cause is an issue in the function code. "
    "However, in rare cases, a Lambda runtime update can cause unexpected function behavior. "
    "For functions using managed runtimes, runtime updates can be triggered by a function change,"
    " or can be applied automatically. "
    "To determine if the runtime has been updated, check the runtime version in the INIT_START "
    "log entry. "
    "If this error correlates with a change in the runtime version, you may be able to mitigate "
    "this error by temporarily rolling back to the previous runtime version. "
    "For more information, see https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html\r"
)


class _State:
    """Per-process values the logging filter and the error logger read."""

    request_id: str | None = None
    tenant_id: str | None = None
    json_logs = False
    log_level = ""
    ensure_ascii = True


# ---------------------------------------------------------------------------------------------
# Errors (awslambdaric/lambda_runtime_exception.py)


class FaultException(Exception):
    MARSHAL_ERROR = "Runtime.MarshalError"
    UNMARSHAL_ERROR = "Runtime.UnmarshalError"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
    MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
    LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

    def __init__(self, exception_type: str, msg: str, trace: list[str] | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.exception_type = exception_type
        self.trace = trace


class RuntimeAPIError(Exception):
    def __init__(self, endpoint: str, status: int, body: bytes) -> None:
        # awslambdaric's LambdaRuntimeClientError wording, so operators see familiar lines.
        super().__init__(
            f"Request to Lambda Runtime '{endpoint}' endpoint failed. "
            f"Reason: '{status}'. Response body: '{body!r}'"
        )
        self.status = status


def make_error(
    error_message: str | None,
    error_type: str | None,
    stack_trace: list[str] | None,
    invoke_id: str | None = None,
) -> dict[str, object]:
    return {
        "errorMessage": error_message if error_message else "",
        "errorType": error_type if error_type else "",
        "requestId": invoke_id if invoke_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def _user_frames(tb: object) -> list[tuple[str, int | None, str, str | None]]:
    """The traceback without the runtime's own leading frames, as awslambdaric trims it."""
    import traceback

    frames = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)]
    for i, frame in enumerate(frames):
        if os.path.dirname(os.path.abspath(frame[0])) != _RUNTIME_DIR:
            return frames[i:]
    # A traceback made only of our frames (e.g. a handler that is not callable) is kept whole,
    # like awslambdaric does.
    return frames


def _format_frames(frames: list[tuple[str, int | None, str, str | None]]) -> list[str]:
    import traceback

    return traceback.format_list(frames)


def make_xray_fault(
    ex_type: str,
    ex_msg: str,
    working_dir: str,
    frames: list[tuple[str, int | None, str, str | None]],
) -> dict[str, object]:
    stack = []
    files = set()
    for tb_file, tb_line, tb_method, _ in frames:
        stack.append({"label": tb_method, "path": tb_file, "line": tb_line})
        files.add(tb_file)
    return {
        "working_directory": working_dir,
        "exceptions": [{"message": ex_msg, "type": ex_type, "stack": stack}],
        "paths": list(files),
    }


# ---------------------------------------------------------------------------------------------
# JSON (awslambdaric/lambda_runtime_marshaller.py, which uses simplejson)

_DECIMAL_TOKEN = f"\x00lamina-decimal-{os.urandom(6).hex()}-"


def to_json(obj: object) -> str:
    """json.dumps with simplejson's behaviour that awslambdaric relies on.

    Decimals are written as their exact text (simplejson's RawJSON), so they stand in the
    output as unique string tokens that are swapped for the number afterwards. bytes become
    UTF-8 text, as simplejson's default `encoding` does.
    """
    import json

    raw: list[str] = []

    def default(o: object) -> object:
        decimal = sys.modules.get("decimal")
        if decimal is not None and isinstance(o, decimal.Decimal):
            if o.is_nan():
                return float("nan")
            raw.append(str(o))
            return f"{_DECIMAL_TOKEN}{len(raw) - 1}"
        if isinstance(o, bytes):
            return o.decode("utf-8")
        raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")

    text = json.dumps(obj, default=default, ensure_ascii=_State.ensure_ascii, allow_nan=True)
    if raw:
        quoted_token = json.dumps(_DECIMAL_TOKEN, ensure_ascii=_State.ensure_ascii)[:-1]
        for i, number in enumerate(raw):
            text = text.replace(f'{quoted_token}{i}"', number, 1)
    return text


def unmarshal_request(body: bytes, content_type: str | None) -> object:
    if content_type != "application/json":
        return body
    import json

    try:
        return json.loads(body)
    except Exception as e:
        raise FaultException(
            FaultException.UNMARSHAL_ERROR, f"Unable to unmarshal input: {e}", None
        ) from None


def marshal_response(response: object) -> tuple[bytes, str]:
    if isinstance(response, bytes):
        return response, "application/unknown"
    try:
        return to_json(response).encode("utf-8"), "application/json"
    except Exception as e:
        raise FaultException(
            FaultException.MARSHAL_ERROR, f"Unable to marshal response: {e}", None
        ) from None


# ---------------------------------------------------------------------------------------------
# Context (awslambdaric/lambda_context.py)

_W3C_ALLOWED_FIELDS = ("traceparent", "tracestate", "baggage")


class LambdaContext:
    def __init__(
        self,
        invoke_id: str | None,
        client_context: dict[str, object] | None,
        cognito_identity: dict[str, object] | None,
        epoch_deadline_time_in_ms: int,
        invoked_function_arn: str | None = None,
        tenant_id: str | None = None,
    ) -> None:
        environ = os.environ
        self.aws_request_id = invoke_id
        self.log_group_name = environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = environ.get("AWS_LAMBDA_FUNCTION_NAME")
        # A string, as on AWS: awslambdaric copies the variable without conversion.
        self.memory_limit_in_mb = environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        self._w3c_fields = self._extract_and_strip_w3c(client_context)

        self.client_context = _make_obj_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _make_obj_from_dict(Client, self.client_context.client)

        self.identity = _make_obj_from_dict(CognitoIdentity, {})
        if cognito_identity is not None:
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")

        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms

    def get_remaining_time_in_millis(self) -> int:
        delta_ms = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return delta_ms if delta_ms > 0 else 0

    def w3c(self) -> dict[str, str]:
        return dict(self._w3c_fields)

    @staticmethod
    def _extract_and_strip_w3c(client_context: object) -> dict[str, str]:
        if not isinstance(client_context, dict) or "w3c" not in client_context:
            return {}
        raw_w3c = client_context.pop("w3c")
        if not isinstance(raw_w3c, dict):
            return {}
        fields = {}
        for key in _W3C_ALLOWED_FIELDS:
            value = raw_w3c.get(key)
            if isinstance(value, str):
                fields[key] = value
        return fields

    def log(self, msg: object) -> None:
        sys.stdout.write(str(msg))

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(["
            f"aws_request_id={self.aws_request_id},"
            f"log_group_name={self.log_group_name},"
            f"log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},"
            f"function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},"
            f"client_context={self.client_context},"
            f"identity={self.identity},"
            f"tenant_id={self.tenant_id}"
            "])"
        )


class CognitoIdentity:
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(["
            f"cognito_identity_id={self.cognito_identity_id},"
            f"cognito_identity_pool_id={self.cognito_identity_pool_id}"
            "])"
        )


class Client:
    __slots__ = [
        "app_package_name",
        "app_title",
        "app_version_code",
        "app_version_name",
        "installation_id",
    ]

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(["
            f"installation_id={self.installation_id},"
            f"app_title={self.app_title},"
            f"app_version_name={self.app_version_name},"
            f"app_version_code={self.app_version_code},"
            f"app_package_name={self.app_package_name}"
            "])"
        )


class ClientContext:
    __slots__ = ["client", "custom", "env"]

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}([custom={self.custom},env={self.env},client={self.client}])"
        )


def _make_obj_from_dict(cls: type, values: dict[str, object] | None) -> object:
    if values is None:
        return None
    obj = cls()
    for field in cls.__slots__:
        setattr(obj, field, values.get(field, None))
    return obj


def _parse_json_header(header: str, name: str) -> dict[str, object]:
    import json

    try:
        return json.loads(header)
    except Exception as e:
        raise FaultException(
            FaultException.LAMBDA_CONTEXT_UNMARSHAL_ERROR,
            f"Unable to parse {name} JSON: {e}",
            None,
        ) from None


# ---------------------------------------------------------------------------------------------
# Runtime API client: HTTP/1.1 over one persistent connection


class RuntimeAPI:
    """A blocking client for the Runtime API, without timeouts (/next is a long poll)."""

    def __init__(self, address: str) -> None:
        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"AWS_LAMBDA_RUNTIME_API = {address!r}: must be host:port")
        self.address = address
        self._host = host[1:-1] if host.startswith("[") else host
        self._port = int(port)
        self._sock: _socket.socket | None = None
        self._buf = bytearray()
        self._requests = 0
        self._channel = False  # this connection speaks Lamina's runtime channel

    def __repr__(self) -> str:
        state = "connected" if self._sock is not None else "idle"
        if self._channel:
            state += " (channel)"
        return f"<RuntimeAPI {self.address} {state} requests={self._requests}>"

    def next(self) -> tuple[dict[str, str], bytes]:
        path = _API_PREFIX + "/invocation/next"
        if self._channel:
            return self._exchange(path, b"N", "", b"")
        status, headers, body = self._request("GET", path, headers=_CHANNEL_UPGRADE)
        if status == 101:
            self._channel = True
            return self._read_frame(path)
        if status != 200:
            raise RuntimeAPIError(path, status, body)
        return headers, body

    def post_response(
        self, request_id: str, payload: bytes, content_type: str
    ) -> tuple[dict[str, str], bytes] | None:
        """Post a result; on the runtime channel, this returns the next invocation."""
        path = f"{_API_PREFIX}/invocation/{request_id}/response"
        if self._channel:
            head = f"{_REQUEST_ID_HEADER}: {request_id}\r\nContent-Type: {content_type}\r\n"
            return self._exchange(path, b"R", head, payload)
        self._post(path, payload, [("Content-Type", content_type)])
        return None

    def post_error(
        self, request_id: str, error: str, xray_fault: str
    ) -> tuple[dict[str, str], bytes] | None:
        """Post an error; on the runtime channel, this returns the next invocation."""
        # Like awslambdaric's C++ client: no error-type header on invocation errors.
        headers = [("Content-Type", "application/json")]
        if xray_fault:
            headers.append((_XRAY_ERROR_CAUSE_HEADER, xray_fault))
        path = f"{_API_PREFIX}/invocation/{request_id}/error"
        body = error.encode("utf-8", "replace")
        if self._channel:
            lines = [(_REQUEST_ID_HEADER, request_id), *headers]
            head = "".join(f"{name}: {value}\r\n" for name, value in lines)
            return self._exchange(path, b"E", head, body)
        self._post(path, body, headers)
        return None

    def post_init_error(self, error: str, error_type: str) -> None:
        headers = [("Content-Type", "application/json"), (_ERROR_TYPE_HEADER, error_type)]
        self._post(_API_PREFIX + "/init/error", error.encode("utf-8", "replace"), headers)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        self._buf.clear()
        self._channel = False
        if sock is not None:
            sock.close()

    def _post(self, path: str, body: bytes, headers: list[tuple[str, str]]) -> None:
        status, _, response = self._request("POST", path, body, headers)
        if not 200 <= status < 300:
            raise RuntimeAPIError(path, status, response)

    def _exchange(
        self, path: str, kind: bytes, head: str, body: bytes
    ) -> tuple[dict[str, str], bytes]:
        """One frame out, one in: the next invocation (or the failure `path` got)."""
        sock = self._sock
        if sock is None:
            raise ConnectionError(f"Runtime API at {self.address} closed the connection")
        raw_head = head.encode("utf-8", "replace")
        start = kind + len(raw_head).to_bytes(4, "big") + len(body).to_bytes(4, "big") + raw_head
        self._requests += 1
        try:
            if len(body) > 65536:
                sock.sendall(start)
                sock.sendall(body)
            else:
                sock.sendall(start + body)
            return self._read_frame(path)
        except RuntimeAPIError:
            raise  # a FAILURE frame: the channel goes on
        except BaseException:
            self.close()
            raise

    def _read_frame(self, path: str) -> tuple[dict[str, str], bytes]:
        buf = self._buf
        while len(buf) < _FRAME_HEAD:
            if not self._fill():
                raise ConnectionError("Runtime API closed the connection mid-frame")
        kind = buf[0]
        head_size = int.from_bytes(buf[1:5], "big")
        body_size = int.from_bytes(buf[5:9], "big")
        del buf[:_FRAME_HEAD]
        fields = _parse_fields(self._read_exact(head_size))
        body = self._read_exact(body_size)
        if kind == ord("I"):
            return fields, body
        status = fields.get("status", "")
        raise RuntimeAPIError(path, int(status) if status.isdigit() else 0, body)

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.address}", _USER_AGENT]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        for name, value in headers or ():
            lines.append(f"{name}: {value}")
        # "replace": a lone surrogate in an error message must not cost the invocation its post.
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "replace")
        self._requests += 1
        # A kept-alive connection may have been closed by the server while the handler ran
        # (idle timeout). If so, nothing of this request was processed: send it again, once.
        for _ in range(2):
            reused = self._sock is not None
            if not reused:
                self._sock = self._connect()
            sock = self._sock
            try:
                if body is not None and len(body) > 65536:
                    sock.sendall(head)
                    sock.sendall(body)
                else:
                    sock.sendall(head + body if body else head)
            except OSError:
                self.close()
                if reused:
                    continue
                raise
            try:
                return self._read_response(method)
            except _StaleConnection:
                self.close()
                if reused:
                    continue
                raise ConnectionError(
                    f"Runtime API at {self.address} closed the connection"
                ) from None
            except BaseException:
                self.close()
                raise
        raise ConnectionError(f"Runtime API at {self.address} closed the connection")

    def _connect(self) -> _socket.socket:
        error: OSError | None = None
        # A str host makes getaddrinfo load the idna codec, and with it `re`: 20 ms.
        host = self._host.encode("ascii") if self._host.isascii() else self._host
        for family, kind, proto, _, sockaddr in _socket.getaddrinfo(
            host, self._port, 0, _socket.SOCK_STREAM
        ):
            sock = _socket.socket(family, kind, proto)
            try:
                sock.connect(sockaddr)
            except OSError as e:
                sock.close()
                error = e
                continue
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            return sock
        raise error or OSError(f"cannot resolve {self._host!r}")

    def _fill(self) -> int:
        chunk = self._sock.recv(65536)
        self._buf += chunk
        return len(chunk)

    def _read_response(self, method: str) -> tuple[int, dict[str, str], bytes]:
        buf = self._buf
        while True:
            try:
                while (end := buf.find(b"\r\n\r\n")) < 0:
                    if not self._fill():
                        raise ConnectionError("Runtime API closed the connection mid-response")
            except (ConnectionError, OSError):
                if not buf:
                    raise _StaleConnection from None
                raise
            status_line, _, fields = bytes(buf[:end]).partition(b"\r\n")
            del buf[: end + 4]
            version, _, rest = status_line.decode("utf-8", "replace").partition(" ")
            status = int(rest[:3])
            headers = _parse_fields(fields)
            if status == 101:
                return status, headers, b""  # the connection now speaks another protocol
            if not 100 <= status < 200:
                break

        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" and (version != "HTTP/1.0" or connection == "keep-alive")
        if method == "HEAD" or status in (204, 304):
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked()
        elif "content-length" in headers:
            body = self._read_exact(int(headers["content-length"]))
        else:
            while self._fill():
                pass
            body = bytes(buf)
            keep_alive = False
        if not keep_alive:
            self.close()
        return status, headers, body

    def _read_exact(self, size: int) -> bytes:
        buf = self._buf
        if len(buf) >= size:
            data = bytes(buf[:size])
            del buf[:size]
            return data
        out = bytearray(size)
        view = memoryview(out)
        have = len(buf)
        out[:have] = buf
        buf.clear()
        sock = self._sock
        while have < size:
            got = sock.recv_into(view[have:])
            if not got:
                raise ConnectionError("Runtime API closed the connection mid-body")
            have += got
        return bytes(out)

    def _read_line(self) -> bytes:
        buf = self._buf
        while (end := buf.find(b"\r\n")) < 0:
            if not self._fill():
                raise ConnectionError("Runtime API closed the connection mid-body")
        line = bytes(buf[:end])
        del buf[: end + 2]
        return line

    def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size = int(self._read_line().split(b";", 1)[0], 16)
            if size == 0:
                while self._read_line():
                    pass
                return b"".join(parts)
            parts.append(self._read_exact(size))
            self._read_exact(2)


def _parse_fields(block: bytes) -> dict[str, str]:
    """`Name: value` lines, names lower-cased."""
    fields = {}
    # UTF-8, like awslambdaric's C++ client hands header values to Python.
    for line in block.decode("utf-8", "replace").split("\r\n"):
        name, _, value = line.partition(":")
        if name:
            fields[name.strip().lower()] = value.strip()
    return fields


class _StaleConnection(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Logging (awslambdaric/bootstrap.py and lambda_runtime_log_utils.py)


def _timestamp_text(now: float) -> str:
    millis = int(now % 1 * 1000)
    return f"{time.strftime(_TEXT_LOG_DATEFMT, time.gmtime(now))}.{millis:03d}Z"


def runtime_log(level: str, message: str) -> None:
    """A line of the runtime's own, shaped like a root-logger record."""
    now = time.time()
    if _State.json_logs:
        import json

        record: dict[str, object] = {
            "timestamp": time.strftime(_JSON_LOG_DATEFMT, time.gmtime(now)),
            "level": level,
            "message": message,
            "logger": "root",
        }
        if _State.request_id:
            record["requestId"] = _State.request_id
        line = json.dumps(record, ensure_ascii=False) + "\n"
    else:
        line = f"[{level}]\t{_timestamp_text(now)}\t{_State.request_id or ''}\t{message}\n"
    sys.stdout.write(line)


def _replace_line_indentation(line: str, indent_char: str, new_indent_char: str) -> str:
    count = len(line) - len(line.lstrip(indent_char))
    return new_indent_char * count + line[count:]


def log_error(error_result: dict[str, object]) -> None:
    if _State.json_logs:
        record = {
            "timestamp": time.strftime(_JSON_LOG_DATEFMT, time.gmtime(time.time())),
            "level": "ERROR",
            **error_result,
        }
        lines = [to_json(record)]
    else:
        description = "[ERROR]"
        error_type = error_result.get("errorType")
        if error_type:
            description += f" {error_type}"
        error_message = error_result.get("errorMessage")
        if error_message:
            if error_type:
                description += ":"
            description += f" {error_message}"
        lines = [description]
        stack_trace = error_result.get("stackTrace")
        if stack_trace is not None:
            lines.append("Traceback (most recent call last):")
            for element in stack_trace:
                if element == "":
                    lines.append("")
                else:
                    lines.extend(
                        _replace_line_indentation(line, " ", _ERROR_LOG_INDENT)
                        for line in element.splitlines()
                    )
    sys.stdout.write(_ERROR_LOG_LINE_TERMINATE.join(lines) + "\n")


def _log_level_from_env(value: str | None) -> str:
    return {None: "", "TRACE": "DEBUG"}.get(value, value).upper()


def install_lambda_logging(logging: object) -> None:
    """Give the root logger awslambdaric's handler, filter and formatter."""
    lg = logging  # the module, passed in because it is imported lazily

    lg.Formatter.converter = time.gmtime

    class LambdaLoggerHandler(lg.Handler):
        def emit(self, record: object) -> None:
            msg = self.format(record)
            # awslambdaric's format ends in "\n" but appends exc_text after it; each record
            # is one log event on AWS, so keep the next record off this line.
            if not msg.endswith("\n"):
                msg += "\n"
            sys.stdout.write(msg)

    class LambdaLoggerFilter(lg.Filter):
        def filter(self, record: object) -> bool:
            record.aws_request_id = _State.request_id or ""
            record.tenant_id = _State.tenant_id
            return True

    handler = LambdaLoggerHandler()
    if _State.json_logs:
        handler.setFormatter(_json_formatter(lg))
    else:
        handler.setFormatter(lg.Formatter(_TEXT_LOG_FORMAT, _TEXT_LOG_DATEFMT))
    root = lg.getLogger()
    if _State.log_level in lg._nameToLevel:
        root.setLevel(_State.log_level)
    handler.addFilter(LambdaLoggerFilter())
    root.addHandler(handler)


_RESERVED_LOG_FIELDS = frozenset(
    {
        "name",
        "msg",
        "args",
        "levelname",
        "levelno",
        "pathname",
        "filename",
        "module",
        "exc_info",
        "exc_text",
        "stack_info",
        "lineno",
        "funcName",
        "created",
        "msecs",
        "relativeCreated",
        "thread",
        "threadName",
        "processName",
        "process",
        "aws_request_id",
        "tenant_id",
        "_frame_type",
    }
)


def _json_formatter(lg: object) -> object:
    import json
    import traceback

    encode = json.JSONEncoder(ensure_ascii=False, default=str).encode

    class JsonFormatter(lg.Formatter):
        def __init__(self) -> None:
            super().__init__(datefmt=_JSON_LOG_DATEFMT)

        def format(self, record: object) -> str:
            r = record
            r.levelno = min(50, max(0, r.levelno)) // 10 * 10
            r.levelname = lg.getLevelName(r.levelno)
            exc_info = r.exc_info
            result = {
                "timestamp": self.formatTime(r, self.datefmt),
                "level": r.levelname,
                "message": (r.msg if isinstance(r.msg, dict) and not r.args else r.getMessage()),
                "logger": r.name,
                "stackTrace": traceback.format_tb(exc_info[2]) if exc_info else None,
                "errorType": exc_info[0].__name__ if exc_info else None,
                "errorMessage": str(exc_info[1]) if exc_info else None,
                "requestId": getattr(r, "aws_request_id", None),
                "location": (f"{r.pathname}:{r.funcName}:{r.lineno}" if exc_info else None),
            }
            if getattr(r, "tenant_id", None) is not None:
                result["tenantId"] = r.tenant_id
            result.update(
                (key, value)
                for key, value in r.__dict__.items()
                if key not in _RESERVED_LOG_FIELDS and key not in result
            )
            return encode({k: v for k, v in result.items() if v is not None}) + "\n"

    return JsonFormatter()


class _InstallLoggingOnImport:
    """A meta path finder that installs the Lambda root handler as `logging` finishes loading.

    Importing logging costs more than the rest of start-up, and most handlers that log import
    it themselves; the handler is in place before any of their code can log.
    """

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> object:
        if fullname != "logging":
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if finder is self or find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _LoaderThenInstallLogging(spec, spec.loader)
                return spec
        return None


class _LoaderThenInstallLogging:
    def __init__(self, spec: object, loader: object) -> None:
        self._spec = spec
        self._loader = loader

    def create_module(self, spec: object) -> object:
        return self._loader.create_module(spec)

    def exec_module(self, module: object) -> None:
        # Leave no trace of the wrapper: the module's loader is the real one.
        self._spec.loader = self._loader
        module.__loader__ = self._loader
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _InstallLoggingOnImport)]
        self._loader.exec_module(module)
        install_lambda_logging(module)

    def __getattr__(self, name: str) -> object:
        return getattr(self._loader, name)


# ---------------------------------------------------------------------------------------------
# Process set-up


def setup_sys_path(task_root: str, opt_root: str) -> None:
    """Task root, then PYTHONPATH, then the layers' Python directories, then the stdlib."""
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    layer_dirs = [f"{opt_root}/python/lib/{version}/site-packages", f"{opt_root}/python"]
    pythonpath = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    front = [task_root, *pythonpath, *layer_dirs]
    sys.path[:] = front + [p for p in sys.path if p not in front]

    # AWS adds these as site directories, so their .pth files count; -S skipped them.
    for directory in (task_root, *layer_dirs):
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        if any(name.endswith(".pth") and not name.startswith(".") for name in names):
            import site

            site.addsitedir(directory)


def setup_stdio() -> None:
    """Unbuffered stdout and stderr, as awslambdaric makes them.

    The platform attributes each line to the invocation running when it reads it, so nothing a
    handler wrote may still sit in a buffer when its response is posted. This is what `-u` does.
    """
    import io

    for name, fd in (("stdout", 1), ("stderr", 2)):
        stream = getattr(sys, name)
        errors = getattr(stream, "errors", None) or "strict"
        raw = io.FileIO(fd, "w", closefd=False)
        setattr(sys, name, io.TextIOWrapper(raw, "utf-8", errors, write_through=True))


def _flush_stdio() -> None:
    # User code may have swapped sys.stdout for something buffered.
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 - contextlib is not worth importing for this
            stream.flush()
        except Exception:
            pass


def get_handler(handler: str) -> object:
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException(
            FaultException.MALFORMED_HANDLER_NAME, f"Bad handler '{handler}': {e}"
        ) from None

    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise FaultException(
                FaultException.BUILT_IN_MODULE_CONFLICT,
                f"Cannot use built-in module {modname} as a handler module",
            )
        import importlib

        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise FaultException(
            FaultException.IMPORT_MODULE_ERROR, f"Unable to import module '{modname}': {e}"
        ) from None
    except SyntaxError as e:
        trace = [f'  File "{e.filename}" Line {e.lineno}\n    {e.text}']
        raise FaultException(
            FaultException.USER_CODE_SYNTAX_ERROR,
            f"Syntax error in module '{modname}': {e}",
            trace,
        ) from None

    try:
        return getattr(module, fname)
    except AttributeError:
        raise FaultException(
            FaultException.HANDLER_NOT_FOUND, f"Handler '{fname}' missing on module '{modname}'"
        ) from None


def handle_invocation(
    api: RuntimeAPI, request_handler: object, headers: dict[str, str], body: bytes
) -> tuple[dict[str, str], bytes] | None:
    """Run one invocation and post its outcome; returns the next invocation if the Runtime
    API answered the post with it."""
    invoke_id = headers.get("lambda-runtime-aws-request-id", "")
    error_result = None
    xray_fault: dict[str, object] = {}
    try:
        client_context_json = headers.get("lambda-runtime-client-context")
        cognito_identity_json = headers.get("lambda-runtime-cognito-identity")
        try:
            deadline_ms = int(headers.get("lambda-runtime-deadline-ms", "0"))
        except ValueError:
            deadline_ms = 0
        context = LambdaContext(
            invoke_id,
            _parse_json_header(client_context_json, "Client Context")
            if client_context_json
            else None,
            _parse_json_header(cognito_identity_json, "Cognito Identity")
            if cognito_identity_json
            else None,
            deadline_ms,
            headers.get("lambda-runtime-invoked-function-arn"),
            headers.get("lambda-runtime-aws-tenant-id") or None,
        )
        event = unmarshal_request(body, headers.get("content-type") or None)
        response = request_handler(event, context)
        payload, content_type = marshal_response(response)
    except FaultException as e:
        xray_fault = make_xray_fault("LambdaValidationError", e.msg, os.getcwd(), [])
        error_result = make_error(e.msg, e.exception_type, e.trace, invoke_id)
    except Exception as e:
        frames = _user_frames(e.__traceback__)
        error_type = type(e).__name__
        xray_fault = make_xray_fault(error_type, str(e), os.getcwd(), frames)
        error_result = make_error(str(e), error_type, _format_frames(frames), invoke_id)

    try:
        if error_result is not None:
            log_error(error_result)
            _flush_stdio()
            xray_json = to_json(xray_fault)
            if len(xray_json.encode("utf-8")) >= _XRAY_ERROR_CAUSE_LIMIT:
                xray_json = ""
            return api.post_error(invoke_id, to_json(error_result), xray_json)
        _flush_stdio()
        return api.post_response(invoke_id, payload, content_type)
    except (RuntimeAPIError, OSError) as e:
        # E.g. 413 for an oversized response: the platform reports it to the invoker.
        runtime_log("WARNING", f"{e}: This won't kill the Runtime loop")
    return None


def _update_xray_env(trace_id: str | None) -> None:
    if trace_id is not None:
        os.environ["_X_AMZN_TRACE_ID"] = trace_id
    elif "_X_AMZN_TRACE_ID" in os.environ:
        del os.environ["_X_AMZN_TRACE_ID"]


def _fail_init(api: RuntimeAPI, error_result: dict[str, object]) -> None:
    import logging

    logging.warning(_UNHANDLED_INIT_WARNING)
    log_error(error_result)
    _flush_stdio()
    try:
        api.post_init_error(to_json(error_result), str(error_result["errorType"]))
    except (RuntimeAPIError, OSError) as e:
        runtime_log("ERROR", str(e))


def escapes_non_ascii(execution_env: str) -> bool:
    """awslambdaric's JSON stops escaping non-ASCII from AWS_Lambda_python3.12 on."""
    prefix = "AWS_Lambda_python3."
    minor = execution_env[len(prefix) :] if execution_env.startswith(prefix) else ""
    return not (minor.isdigit() and int(minor) >= 12)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    opt_root = argv[1] if len(argv) > 1 else "/opt"
    # User code sees the argv AWS's runtime has: just the script.
    del sys.argv[1:]

    environ = os.environ
    setup_sys_path(environ.get("LAMBDA_TASK_ROOT") or os.getcwd(), opt_root)
    setup_stdio()

    _State.ensure_ascii = escapes_non_ascii(environ.get("AWS_EXECUTION_ENV", ""))
    _State.json_logs = environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"
    _State.log_level = _log_level_from_env(environ.get("AWS_LAMBDA_LOG_LEVEL"))
    if "logging" in sys.modules:
        install_lambda_logging(sys.modules["logging"])
    else:
        sys.meta_path.insert(0, _InstallLoggingOnImport())

    api = RuntimeAPI(environ.get("AWS_LAMBDA_RUNTIME_API") or "127.0.0.1:9001")

    error_result = None
    try:
        request_handler = get_handler(environ.get("_HANDLER", ""))
    except FaultException as e:
        error_result = make_error(e.msg, e.exception_type, e.trace)
    except Exception as e:
        frames = _user_frames(e.__traceback__)
        error_result = make_error(str(e), type(e).__name__, _format_frames(frames))
    if error_result is not None:
        _fail_init(api, error_result)
        return 1

    following = None  # the next invocation, when posting a result brought it
    while True:
        if following is None:
            try:
                following = api.next()
            except (RuntimeAPIError, OSError) as e:
                runtime_log("ERROR", f"Failed to get next invocation: {e}")
                _flush_stdio()
                return 1
        headers, body = following
        _State.request_id = headers.get("lambda-runtime-aws-request-id")
        _State.tenant_id = headers.get("lambda-runtime-aws-tenant-id") or None
        _update_xray_env(headers.get("lambda-runtime-trace-id") or None)
        following = handle_invocation(api, request_handler, headers, body)


if __name__ == "__main__":
    sys.exit(main())
