"""Lambda's rules for names, settings and environment variables.

Each check raises `InvalidParameterValueException` naming the field, the bad value and the
rule, as the Lambda API does (it answers 400 to such requests).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from lamina.core.errors import InvalidParameterValueException
from lamina.core.models import RUNTIMES

FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
LAYER_NAME = re.compile(r"[a-zA-Z0-9_-]{1,140}")
ENV_KEY = re.compile(r"[a-zA-Z][a-zA-Z0-9_]+")
MEMORY_RANGE = (128, 10240)
TIMEOUT_RANGE = (1, 900)
ENV_TOTAL_BYTES = 4096
MAX_LAYERS = 5

RESERVED_ENV = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)


def _bad(field: str, value: object, rule: str) -> InvalidParameterValueException:
    return InvalidParameterValueException(f"{field} = {value!r}: {rule}")


def function_name(name: str) -> str:
    if not FUNCTION_NAME.fullmatch(name):
        raise _bad("FunctionName", name, "must be 1-64 characters of letters, digits, '-' and '_'")
    return name


def layer_name(name: str) -> str:
    if not LAYER_NAME.fullmatch(name):
        raise _bad("LayerName", name, "must be 1-140 characters of letters, digits, '-' and '_'")
    return name


def runtime(value: str) -> str:
    if value not in RUNTIMES:
        raise _bad("Runtime", value, f"must be one of {', '.join(sorted(RUNTIMES))}")
    return value


def handler(value: str) -> str:
    if not value or len(value) > 128 or any(c.isspace() for c in value):
        raise _bad("Handler", value, "must be 1-128 characters without whitespace")
    return value


def memory_size(value: object) -> int:
    low, high = MEMORY_RANGE
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _bad("MemorySize", value, f"must be an integer between {low} and {high} MB")
    return value


def timeout(value: object) -> int:
    low, high = TIMEOUT_RANGE
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _bad("Timeout", value, f"must be an integer between {low} and {high} seconds")
    return value


def environment(variables: object) -> dict[str, str]:
    if not isinstance(variables, Mapping):
        raise _bad("Environment.Variables", variables, "must be a map of strings to strings")
    total = 0
    for key, value in variables.items():
        if not isinstance(key, str) or not ENV_KEY.fullmatch(key):
            raise _bad(
                "Environment.Variables",
                key,
                "keys must start with a letter and have at least 2 characters of "
                "letters, digits and '_'",
            )
        if key in RESERVED_ENV:
            raise _bad("Environment.Variables", key, "is a reserved variable Lambda sets itself")
        if not isinstance(value, str):
            raise _bad(f"Environment.Variables.{key}", value, "must be a string")
        total += len(key.encode()) + len(value.encode())
    if total > ENV_TOTAL_BYTES:
        raise _bad(
            "Environment.Variables",
            f"{total} bytes",
            f"keys and values together must not exceed {ENV_TOTAL_BYTES} bytes",
        )
    return dict(variables)


def layers(arns: object) -> tuple[str, ...]:
    if not isinstance(arns, list | tuple) or not all(isinstance(a, str) for a in arns):
        raise _bad("Layers", arns, "must be a list of layer version ARNs")
    if len(arns) > MAX_LAYERS:
        raise _bad("Layers", len(arns), f"a function may use at most {MAX_LAYERS} layers")
    return tuple(arns)


def reserved_concurrency(value: object, account_limit: int) -> int:
    top = account_limit - 100
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
        raise _bad(
            "ReservedConcurrentExecutions",
            value,
            f"must be between 0 and {top} (the unreserved pool keeps at least 100)",
        )
    return value
