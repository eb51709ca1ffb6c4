from __future__ import annotations

import re

import pytest

from lamina.core import validation
from lamina.core.errors import InvalidParameterValueException


def _message(call: object, *args: object) -> str:
    with pytest.raises(InvalidParameterValueException) as caught:
        call(*args)  # type: ignore[operator]
    assert caught.value.status == 400
    assert caught.value.error_type == "InvalidParameterValueException"
    return caught.value.message


# names


@pytest.mark.parametrize("name", ["a", "app-dev-api", "under_score", "X9", "f" * 64])
def test_valid_function_names(name: str) -> None:
    assert validation.function_name(name) == name


@pytest.mark.parametrize("name", ["", "f" * 65, "has space", "dot.name", "colon:q", "ünï"])
def test_invalid_function_names(name: str) -> None:
    assert _message(validation.function_name, name) == (
        f"FunctionName = {name!r}: must be 1-64 characters of letters, digits, '-' and '_'"
    )


def test_function_name_rejects_a_trailing_newline() -> None:
    with pytest.raises(InvalidParameterValueException):
        validation.function_name("api\n")


@pytest.mark.parametrize("name", ["bref-php-84", "l" * 140])
def test_valid_layer_names(name: str) -> None:
    assert validation.layer_name(name) == name


@pytest.mark.parametrize("name", ["", "l" * 141, "a/b"])
def test_invalid_layer_names(name: str) -> None:
    assert _message(validation.layer_name, name) == (
        f"LayerName = {name!r}: must be 1-140 characters of letters, digits, '-' and '_'"
    )


def test_runtime_must_be_known() -> None:
    assert validation.runtime("python3.12") == "python3.12"
    assert validation.runtime("provided.al2023") == "provided.al2023"
    message = _message(validation.runtime, "nodejs20.x")
    assert message.startswith("Runtime = 'nodejs20.x': must be one of provided, provided.al2, ")
    assert "python3.13" in message


@pytest.mark.parametrize("value", ["index.handler", "public/index.php", "h" * 128])
def test_valid_handlers(value: str) -> None:
    assert validation.handler(value) == value


@pytest.mark.parametrize("value", ["", "h" * 129, "app handler", "app\thandler"])
def test_invalid_handlers(value: str) -> None:
    assert _message(validation.handler, value) == (
        f"Handler = {value!r}: must be 1-128 characters without whitespace"
    )


# memory and timeout


@pytest.mark.parametrize("value", [128, 1024, 1769, 10240])
def test_memory_size_in_range(value: int) -> None:
    assert validation.memory_size(value) == value


@pytest.mark.parametrize("value", [127, 10241, 0, -128, True, 512.0, "512", None])
def test_memory_size_out_of_range_or_not_an_int(value: object) -> None:
    assert _message(validation.memory_size, value) == (
        f"MemorySize = {value!r}: must be an integer between 128 and 10240 MB"
    )


@pytest.mark.parametrize("value", [1, 3, 900])
def test_timeout_in_range(value: int) -> None:
    assert validation.timeout(value) == value


@pytest.mark.parametrize("value", [0, 901, -1, True, False, 3.0, "3", None])
def test_timeout_out_of_range_or_not_an_int(value: object) -> None:
    assert _message(validation.timeout, value) == (
        f"Timeout = {value!r}: must be an integer between 1 and 900 seconds"
    )


# environment variables


def test_environment_accepts_valid_variables_and_copies_them() -> None:
    variables = {"APP_ENV": "prod", "a1": "", "Db_Host_2": "db.internal", "BREF_LOOP_MAX": "1"}
    result = validation.environment(variables)
    assert result == variables
    assert result is not variables


def test_environment_accepts_an_empty_map() -> None:
    assert validation.environment({}) == {}


@pytest.mark.parametrize("value", [None, ["A=b"], "A=b"])
def test_environment_must_be_a_map(value: object) -> None:
    assert _message(validation.environment, value) == (
        f"Environment.Variables = {value!r}: must be a map of strings to strings"
    )


@pytest.mark.parametrize("key", ["A", "1ABC", "_PRIVATE", "HAS-DASH", "HAS SPACE", "DOT.KEY", "É1"])
def test_environment_key_pattern(key: str) -> None:
    assert _message(validation.environment, {key: "x"}) == (
        f"Environment.Variables = {key!r}: keys must start with a letter and have at least "
        "2 characters of letters, digits and '_'"
    )


def test_environment_key_must_be_a_string() -> None:
    assert _message(validation.environment, {1: "x"}).startswith("Environment.Variables = 1: ")


@pytest.mark.parametrize(
    "key",
    sorted(k for k in validation.RESERVED_ENV if re.fullmatch(r"[A-Za-z]\w+", k)),
)
def test_environment_reserved_keys_are_refused(key: str) -> None:
    assert _message(validation.environment, {"OK_KEY": "1", key: "x"}) == (
        f"Environment.Variables = {key!r}: is a reserved variable Lambda sets itself"
    )


@pytest.mark.parametrize("key", ["_HANDLER", "_X_AMZN_TRACE_ID"])
def test_environment_reserved_keys_with_underscore_are_refused_too(key: str) -> None:
    with pytest.raises(InvalidParameterValueException, match=re.escape(repr(key))):
        validation.environment({key: "x"})


def test_environment_reserved_list_matches_the_reference() -> None:
    assert {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
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
    } <= validation.RESERVED_ENV


def test_unreserved_defaults_may_be_overridden() -> None:
    variables = {"LANG": "C.UTF-8", "PATH": "/opt/bin:/usr/bin", "TZ_NAME": "UTC"}
    assert validation.environment(variables) == variables


@pytest.mark.parametrize("value", [1, None, True, b"bytes"])
def test_environment_values_must_be_strings(value: object) -> None:
    assert _message(validation.environment, {"PORT": value}) == (
        f"Environment.Variables.PORT = {value!r}: must be a string"
    )


def test_environment_total_size_may_be_exactly_4_kb() -> None:
    validation.environment({"K1": "v" * (4096 - 2)})
    validation.environment({"AA": "x" * 2000, "BB": "y" * (4096 - 4 - 2000)})


def test_environment_total_size_over_4_kb_is_refused() -> None:
    assert _message(validation.environment, {"K1": "v" * (4096 - 1)}) == (
        "Environment.Variables = '4097 bytes': keys and values together must not exceed 4096 bytes"
    )


def test_environment_size_counts_utf8_bytes_of_keys_and_values() -> None:
    # 2 bytes of key + 2047 two-byte characters = 4096 bytes; one more is too many.
    validation.environment({"K1": "é" * 2047})
    with pytest.raises(InvalidParameterValueException, match="'4098 bytes'"):
        validation.environment({"K1": "é" * 2048})


# layers


@pytest.mark.parametrize("count", [0, 1, 5])
def test_layers_up_to_five(count: int) -> None:
    arns = [f"arn:aws:lambda:us-east-1:000000000000:layer:l{i}:1" for i in range(count)]
    assert validation.layers(arns) == tuple(arns)
    assert validation.layers(tuple(arns)) == tuple(arns)


def test_six_layers_are_refused() -> None:
    arns = [f"arn:aws:lambda:us-east-1:000000000000:layer:l{i}:1" for i in range(6)]
    assert _message(validation.layers, arns) == ("Layers = 6: a function may use at most 5 layers")


@pytest.mark.parametrize("value", ["arn:aws:lambda:us-east-1:0:layer:l:1", None, [1], {"a": 1}])
def test_layers_must_be_a_list_of_strings(value: object) -> None:
    assert _message(validation.layers, value) == (
        f"Layers = {value!r}: must be a list of layer version ARNs"
    )


# reserved concurrency


@pytest.mark.parametrize("value", [0, 1, 900])
def test_reserved_concurrency_in_range(value: int) -> None:
    assert validation.reserved_concurrency(value, account_limit=1000) == value


@pytest.mark.parametrize("value", [-1, 901, True, 5.0, "5", None])
def test_reserved_concurrency_keeps_100_unreserved(value: object) -> None:
    assert _message(validation.reserved_concurrency, value, 1000) == (
        f"ReservedConcurrentExecutions = {value!r}: must be between 0 and 900 "
        "(the unreserved pool keeps at least 100)"
    )


def test_reserved_concurrency_bound_follows_the_account_limit() -> None:
    assert validation.reserved_concurrency(50, account_limit=150) == 50
    with pytest.raises(InvalidParameterValueException, match="between 0 and 50 "):
        validation.reserved_concurrency(51, account_limit=150)
