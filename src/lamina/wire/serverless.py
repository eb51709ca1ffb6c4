"""A minimal reader for Serverless Framework v3 `serverless.yml` files.

Pure: it takes the file's text and name and returns a `Service`, or raises one
`ServerlessConfigError` listing every problem found, each as
`serverless.yml:12: functions.hello.memorySize = 20: must be between 128 and 10240 MB`.

What it reads: `service`; `provider` (`name`, `stage`, `region`, `runtime`, `memorySize`,
`timeout`, `environment`, `layers`); `functions.<key>` (`handler`, `name`, `description`,
`runtime`, `memorySize`, `timeout`, `environment`, `layers`). Defaults are Serverless's, not
Lambda's: 1024 MB, 6 seconds, stage `dev`, region `us-east-1`, function name
`<service>-<stage>-<key>`.

What it does not do yet: `${...}` variables are left exactly as written (the resolver is a
separate step), and keys Serverless knows but Lamina does not apply yet (`events`, `package`,
...) are accepted silently. Keys Serverless does not know become warnings with a suggestion,
or errors under `configValidationMode: error`, as in Serverless.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from lamina.core.errors import InvalidParameterValueException
from lamina.core.models import RUNTIMES
from lamina.core.validation import (
    ENV_KEY,
    ENV_TOTAL_BYTES,
    FUNCTION_NAME,
    MAX_LAYERS,
    MEMORY_RANGE,
    RESERVED_ENV,
    TIMEOUT_RANGE,
)

DEFAULT_STAGE = "dev"
DEFAULT_REGION = "us-east-1"
DEFAULT_MEMORY_SIZE = 1024
DEFAULT_TIMEOUT = 6
MAX_DESCRIPTION = 256

# Serverless's own patterns for these names (lib/config-schema.js).
SERVICE_NAME = re.compile(r"[a-zA-Z][0-9a-zA-Z-]+")
STAGE_NAME = re.compile(r"[a-zA-Z0-9-]+")
FUNCTION_KEY = re.compile(r"[a-zA-Z0-9-_]+")

ROOT_KEYS = frozenset(
    {
        "service",
        "frameworkVersion",
        "provider",
        "functions",
        "layers",
        "package",
        "plugins",
        "custom",
        "resources",
        "useDotenv",
        "configValidationMode",
        "deprecationNotificationMode",
        "disabledDeprecations",
        "variablesResolutionMode",
        "params",
        "stages",
        "outputs",
        "app",
        "org",
        "console",
        "dashboard",
        "bref",
        "constructs",
    }
)

PROVIDER_KEYS = frozenset(
    {
        "name",
        "stage",
        "region",
        "profile",
        "runtime",
        "runtimeManagement",
        "memorySize",
        "timeout",
        "architecture",
        "environment",
        "layers",
        "logRetentionInDays",
        "logDataProtectionPolicy",
        "versionFunctions",
        "deploymentMethod",
        "deploymentBucket",
        "deploymentPrefix",
        "iam",
        "iamRoleStatements",
        "iamManagedPolicies",
        "role",
        "rolePermissionsBoundary",
        "cfnRole",
        "tags",
        "stackTags",
        "stackName",
        "stackPolicy",
        "stackParameters",
        "tracing",
        "logs",
        "httpApi",
        "apiGateway",
        "apiName",
        "alb",
        "vpc",
        "vpcEndpointIds",
        "endpointType",
        "kmsKeyArn",
        "lambdaHashingVersion",
        "notificationArns",
        "disableRollback",
        "rollbackConfiguration",
        "s3",
        "ecr",
        "eventBridge",
        "websocket",
        "websocketsApiName",
        "websocketsApiRouteSelectionExpression",
        "websocketsDescription",
        "usagePlan",
        "apiKeys",
        "resourcePolicy",
        "cloudFront",
    }
)

FUNCTION_KEYS = frozenset(
    {
        "handler",
        "name",
        "description",
        "runtime",
        "runtimeManagement",
        "memorySize",
        "timeout",
        "environment",
        "layers",
        "architecture",
        "events",
        "package",
        "reservedConcurrency",
        "provisionedConcurrency",
        "maximumRetryAttempts",
        "maximumEventAge",
        "destinations",
        "onError",
        "ephemeralStorageSize",
        "disableLogs",
        "logRetentionInDays",
        "logDataProtectionPolicy",
        "tags",
        "url",
        "image",
        "role",
        "vpc",
        "tracing",
        "kmsKeyArn",
        "fileSystemConfig",
        "snapStart",
        "condition",
        "dependsOn",
    }
)

VALIDATION_MODES = ("warn", "error", "off")


class ServerlessConfigError(InvalidParameterValueException):
    """Every problem found in one configuration file, each naming file, line, key and rule."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    key: str  # the key under `functions:`
    name: str  # the deployed function name
    handler: str
    runtime: str
    memory_size: int
    timeout: int
    environment: dict[str, str]  # provider's merged under the function's, stringified
    layers: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    stage: str
    region: str
    functions: dict[str, FunctionSpec]
    warnings: tuple[str, ...] = ()


# --- YAML with line numbers ------------------------------------------------------------------


class _Map(dict[Any, Any]):
    """A mapping that remembers the line (1-based) of each of its keys."""

    __slots__ = ("key_lines",)

    def __init__(self) -> None:
        super().__init__()
        self.key_lines: dict[Any, int] = {}


class _Loader(yaml.SafeLoader):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.duplicate_keys: list[tuple[int, str]] = []


# Serverless parses YAML with js-yaml, which follows YAML 1.2: `yes`, `no`, `on` and `off`
# are strings there, so `COUNTRY: no` must stay "no" rather than become false. Dates stay
# strings too: nothing in serverless.yml is a date, and str(date) would reformat a value.
_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, rx)
        for tag, rx in entries
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Iterator[_Map]:
    data = _Map()
    yield data
    seen: set[tuple[str, str]] = set()
    for key_node, _ in node.value:
        # Only the node's own keys: a key that overrides one brought in by `<<` is no duplicate.
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            if (key_node.tag, key_node.value) in seen:
                loader.duplicate_keys.append((key_node.start_mark.line + 1, key_node.value))
            seen.add((key_node.tag, key_node.value))
    loader.flatten_mapping(node)  # applies `<<` merge keys, as SafeLoader does
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                "found an unhashable key",
                key_node.start_mark,
            )
        data[key] = loader.construct_object(value_node, deep=True)
        data.key_lines[key] = key_node.start_mark.line + 1


def _construct_cloudformation(loader: _Loader, suffix: str, node: yaml.Node) -> object:
    # CloudFormation's short forms (`!Ref X`, `!GetAtt A.B`, `!Sub ...`) are common in
    # `resources:`; Serverless reads them as their long forms.
    value: object
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_object(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{suffix}": value}


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_multi_constructor("!", _construct_cloudformation)


def _load(text: str, file_name: str) -> _Map:
    loader = _Loader(text)
    try:
        root = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file_name}:{mark.line + 1}" if mark else file_name
        raise ServerlessConfigError([f"{where}: invalid YAML: {exc.problem or exc}"]) from None
    except yaml.YAMLError as exc:
        raise ServerlessConfigError([f"{file_name}: invalid YAML: {exc}"]) from None
    finally:
        loader.dispose()
    if loader.duplicate_keys:
        # js-yaml, which Serverless uses, refuses duplicate keys; PyYAML would keep the last.
        raise ServerlessConfigError(
            [
                f"{file_name}:{line}: {key}: duplicated mapping key"
                for line, key in loader.duplicate_keys
            ]
        )
    if root is None:
        raise ServerlessConfigError([f"{file_name}: the file is empty"])
    if not isinstance(root, _Map):
        raise ServerlessConfigError([f"{file_name}:1: must be a map of keys to values"])
    return root


# --- validation ------------------------------------------------------------------------------

_MISSING: Any = object()


def _show(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, Mapping):
        return "{...}"
    return "[...]" if isinstance(value, list) else repr(value)


def _variables_hint(value: object) -> str:
    if isinstance(value, str) and "${" in value:
        return " (variables are not resolved yet)"
    return ""


class _Report:
    def __init__(self, file_name: str, validation_mode: str) -> None:
        self.file_name = file_name
        self.validation_mode = validation_mode
        self._problems: list[tuple[int, str]] = []
        self._warnings: list[tuple[int, str]] = []

    @property
    def problems(self) -> list[str]:
        """In file order, which is how a reader fixes them."""
        return [message for _, message in sorted(self._problems, key=lambda p: p[0])]

    @property
    def warnings(self) -> list[str]:
        return [message for _, message in sorted(self._warnings, key=lambda p: p[0])]

    @property
    def problem_count(self) -> int:
        return len(self._problems)

    def _place(self, line: int | None) -> str:
        return f"{self.file_name}:{line}" if line else self.file_name

    def problem(self, line: int | None, path: str, rule: str, value: object = _MISSING) -> None:
        shown = "" if value is _MISSING else f" = {_show(value)}"
        message = f"{self._place(line)}: {path}{shown}: {rule}{_variables_hint(value)}"
        self._problems.append((line or 0, message))

    def unknown_keys(self, mapping: _Map, known: frozenset[str], prefix: str) -> None:
        if self.validation_mode == "off":
            return
        by_lower = {k.lower(): k for k in known}
        for key, line in mapping.key_lines.items():
            if key in known:
                continue
            close = difflib.get_close_matches(str(key).lower(), by_lower, n=1, cutoff=0.6)
            hint = f"; did you mean '{by_lower[close[0]]}'?" if close else ""
            message = f"{self._place(line)}: {prefix}{key}: unknown key{hint}"
            target = self._problems if self.validation_mode == "error" else self._warnings
            target.append((line, message))


def _line(mapping: _Map, key: object) -> int | None:
    return mapping.key_lines.get(key)


def _get(mapping: _Map, key: str) -> Any:
    """The value of an optional key; an explicit `null` counts as absent, as in Serverless."""
    value = mapping.get(key)
    return _MISSING if value is None else value


def _string(report: _Report, mapping: _Map, key: str, path: str) -> str | None:
    value = _get(mapping, key)
    if value is _MISSING:
        return None
    if not isinstance(value, str):
        report.problem(_line(mapping, key), path, "must be a string", value)
        return None
    return value


def _integer(
    report: _Report, mapping: _Map, key: str, path: str, bounds: tuple[int, int], unit: str
) -> int | None:
    value = _get(mapping, key)
    if value is _MISSING:
        return None
    low, high = bounds
    if not isinstance(value, int) or isinstance(value, bool):
        report.problem(_line(mapping, key), path, f"must be an integer ({unit})", value)
        return None
    if not low <= value <= high:
        report.problem(_line(mapping, key), path, f"must be between {low} and {high} {unit}", value)
        return None
    return value


def _runtime(report: _Report, mapping: _Map, path: str) -> str | None:
    value = _string(report, mapping, "runtime", path)
    if value is not None and value not in RUNTIMES:
        report.problem(
            _line(mapping, "runtime"),
            path,
            f"must be one of {', '.join(sorted(RUNTIMES))}",
            value,
        )
        return None
    return value


def _stringify(value: object) -> str | None:
    """An environment value as Serverless passes it to Lambda (JavaScript's `String(x)`)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return None


def _environment(report: _Report, mapping: _Map, path: str) -> dict[str, str] | None:
    value = _get(mapping, "environment")
    if value is _MISSING:
        return None
    if not isinstance(value, _Map):
        report.problem(_line(mapping, "environment"), path, "must be a map", value)
        return None
    result: dict[str, str] = {}
    for key, raw in value.items():
        line = _line(value, key)
        if not isinstance(key, str) or not ENV_KEY.fullmatch(key):
            report.problem(
                line,
                f"{path}.{key}",
                "names must start with a letter and have at least 2 characters of "
                "letters, digits and '_'",
            )
            continue
        if key in RESERVED_ENV:
            report.problem(line, f"{path}.{key}", "is a reserved variable Lambda sets itself")
            continue
        text = _stringify(raw)
        if text is None:
            report.problem(line, f"{path}.{key}", "must be a string, number or boolean", raw)
            continue
        result[key] = text
    return result


def _layers(report: _Report, mapping: _Map, path: str) -> tuple[str, ...] | None:
    value = _get(mapping, "layers")
    if value is _MISSING:
        return None
    line = _line(mapping, "layers")
    if not isinstance(value, list):
        report.problem(line, path, "must be a list of layer version ARNs", value)
        return None
    arns: list[str] = []
    for index, arn in enumerate(value):
        if not isinstance(arn, str):
            report.problem(
                line,
                f"{path}[{index}]",
                "must be a layer version ARN (references to layers of this file are "
                "not supported yet)",
                arn,
            )
            continue
        arns.append(arn)
    if len(value) > MAX_LAYERS:
        report.problem(line, path, f"a function may use at most {MAX_LAYERS} layers", len(value))
    return tuple(arns)


def _mapping(report: _Report, parent: _Map, key: str, path: str) -> _Map | None:
    value = _get(parent, key)
    if value is _MISSING:
        return None
    if not isinstance(value, _Map):
        report.problem(_line(parent, key), path, "must be a map", value)
        return None
    return value


@dataclass(frozen=True, slots=True)
class _Defaults:
    runtime: str | None
    runtime_invalid: bool
    memory_size: int
    timeout: int
    environment: dict[str, str]
    layers: tuple[str, ...]


def _provider(report: _Report, root: _Map) -> tuple[_Map, _Defaults]:
    provider = _mapping(report, root, "provider", "provider")
    if provider is None:
        if "provider" not in root or root["provider"] is None:
            report.problem(None, "provider", "required (with `name: aws`)")
        provider = _Map()
    else:
        report.unknown_keys(provider, PROVIDER_KEYS, "provider.")
        name = provider.get("name", _MISSING)
        if name is _MISSING:
            report.problem(
                root.key_lines.get("provider"), "provider.name", "required; must be 'aws'"
            )
        elif name != "aws":
            report.problem(_line(provider, "name"), "provider.name", "must be 'aws'", name)
    problems_before = report.problem_count
    runtime = _runtime(report, provider, "provider.runtime")
    runtime_invalid = report.problem_count > problems_before
    memory = _integer(report, provider, "memorySize", "provider.memorySize", MEMORY_RANGE, "MB")
    timeout = _integer(report, provider, "timeout", "provider.timeout", TIMEOUT_RANGE, "seconds")
    environment = _environment(report, provider, "provider.environment")
    layers = _layers(report, provider, "provider.layers")
    return provider, _Defaults(
        runtime=runtime,
        runtime_invalid=runtime_invalid,
        memory_size=DEFAULT_MEMORY_SIZE if memory is None else memory,
        timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
        environment=environment or {},
        layers=layers or (),
    )


def _function(
    report: _Report,
    functions: _Map,
    key: object,
    service: str | None,
    stage: str,
    defaults: _Defaults,
) -> FunctionSpec | None:
    key_line = _line(functions, key)
    path = f"functions.{key}"
    if not isinstance(key, str) or not FUNCTION_KEY.fullmatch(key):
        report.problem(key_line, path, "function keys must be letters, digits, '-' and '_'")
        return None
    fn = functions[key]
    if not isinstance(fn, _Map):
        report.problem(key_line, path, "must be a map with at least `handler`", fn)
        return None
    report.unknown_keys(fn, FUNCTION_KEYS, f"{path}.")
    before = report.problem_count

    handler = _string(report, fn, "handler", f"{path}.handler")
    if handler is None and _get(fn, "handler") is _MISSING:
        report.problem(key_line, f"{path}.handler", "required")
    elif handler is not None and (
        not handler or len(handler) > 128 or any(c.isspace() for c in handler)
    ):
        report.problem(
            _line(fn, "handler"),
            f"{path}.handler",
            "must be 1-128 characters without whitespace",
            handler,
        )

    runtime = _runtime(report, fn, f"{path}.runtime")
    if runtime is None and _get(fn, "runtime") is _MISSING:
        runtime = defaults.runtime
        if runtime is None and not defaults.runtime_invalid:
            report.problem(
                key_line, f"{path}.runtime", "required (set it here or in provider.runtime)"
            )

    memory = _integer(report, fn, "memorySize", f"{path}.memorySize", MEMORY_RANGE, "MB")
    timeout = _integer(report, fn, "timeout", f"{path}.timeout", TIMEOUT_RANGE, "seconds")
    own_environment = _environment(report, fn, f"{path}.environment")
    environment = {**defaults.environment, **(own_environment or {})}
    if not any("${" in v for v in environment.values()):
        # With variables still in place the final size is unknown; the server checks it.
        size = sum(len(k.encode()) + len(v.encode()) for k, v in environment.items())
        if size > ENV_TOTAL_BYTES:
            report.problem(
                _line(fn, "environment") or key_line,
                f"{path}.environment",
                f"names and values together (with provider.environment) must not exceed "
                f"{ENV_TOTAL_BYTES} bytes, not {size}",
            )
    layers = _layers(report, fn, f"{path}.layers")
    description = _string(report, fn, "description", f"{path}.description")
    if description is not None and len(description) > MAX_DESCRIPTION:
        report.problem(
            _line(fn, "description"),
            f"{path}.description",
            f"must be at most {MAX_DESCRIPTION} characters, not {len(description)}",
        )

    explicit_name = _string(report, fn, "name", f"{path}.name")
    name = explicit_name or (f"{service}-{stage}-{key}" if service else None)
    if name is not None and not FUNCTION_NAME.fullmatch(name):
        if explicit_name:
            report.problem(
                _line(fn, "name"),
                f"{path}.name",
                "must be 1-64 characters of letters, digits, '-' and '_'",
                name,
            )
        else:
            report.problem(
                key_line,
                path,
                f"the function name {name!r} (<service>-<stage>-<key>) must be 1-64 "
                "characters of letters, digits, '-' and '_'; set `name:` to choose another",
            )

    if report.problem_count > before or name is None or handler is None or runtime is None:
        return None
    return FunctionSpec(
        key=key,
        name=name,
        handler=handler,
        runtime=runtime,
        memory_size=defaults.memory_size if memory is None else memory,
        timeout=defaults.timeout if timeout is None else timeout,
        environment=environment,
        layers=defaults.layers if layers is None else layers,
        description=description or "",
    )


def _validation_mode(report: _Report, root: _Map) -> str:
    mode = root.get("configValidationMode", "warn")
    if mode not in VALIDATION_MODES:
        report.problem(
            _line(root, "configValidationMode"),
            "configValidationMode",
            f"must be one of {', '.join(VALIDATION_MODES)}",
            mode,
        )
        return "warn"
    return str(mode)


def _service_name(report: _Report, root: _Map) -> str | None:
    value = root.get("service", _MISSING)
    if value is _MISSING or value is None:
        report.problem(None, "service", "required")
        return None
    if not isinstance(value, str) or not SERVICE_NAME.fullmatch(value):
        report.problem(
            _line(root, "service"),
            "service",
            "must start with a letter and contain only letters, digits and '-'",
            value,
        )
        return None
    return value


def _stage(report: _Report, provider: _Map, option: str | None) -> str:
    if option is not None:
        if not STAGE_NAME.fullmatch(option):
            report.problem(None, "--stage", "must contain only letters, digits and '-'", option)
        return option
    value = _string(report, provider, "stage", "provider.stage")
    if value is None:
        return DEFAULT_STAGE
    if not STAGE_NAME.fullmatch(value):
        report.problem(
            _line(provider, "stage"),
            "provider.stage",
            "must contain only letters, digits and '-'",
            value,
        )
    return value


def parse_service(
    text: str,
    file_name: str = "serverless.yml",
    *,
    stage: str | None = None,
    region: str | None = None,
) -> Service:
    """Read a serverless.yml; `stage`/`region` are the `--stage`/`--region` options."""
    root = _load(text, file_name)
    report = _Report(file_name, "warn")
    report.validation_mode = _validation_mode(report, root)
    report.unknown_keys(root, ROOT_KEYS, "")
    service = _service_name(report, root)
    provider, defaults = _provider(report, root)
    chosen_stage = _stage(report, provider, stage)
    chosen_region = region or _string(report, provider, "region", "provider.region")

    functions: dict[str, FunctionSpec] = {}
    functions_map = _mapping(report, root, "functions", "functions")
    if functions_map is not None:
        for key in functions_map:
            spec = _function(report, functions_map, key, service, chosen_stage, defaults)
            if spec is not None:
                functions[spec.key] = spec

    if report.problem_count or service is None:
        raise ServerlessConfigError(report.problems)
    return Service(
        name=service,
        stage=chosen_stage,
        region=chosen_region or DEFAULT_REGION,
        functions=functions,
        warnings=tuple(report.warnings),
    )


def function_names(
    text: str, file_name: str = "serverless.yml", *, stage: str | None = None
) -> dict[str, str]:
    """Function key -> deployed name, read leniently so that `-f key` works even while other
    parts of the file are invalid. Raises `ServerlessConfigError` only for broken YAML."""
    root = _load(text, file_name)
    service = root.get("service")
    provider = root.get("provider")
    functions = root.get("functions")
    if not isinstance(functions, Mapping):
        return {}
    if stage is None and isinstance(provider, Mapping):
        stage = provider.get("stage") if isinstance(provider.get("stage"), str) else None
    names: dict[str, str] = {}
    for key, fn in functions.items():
        if not isinstance(key, str):
            continue
        explicit = fn.get("name") if isinstance(fn, Mapping) else None
        if isinstance(explicit, str) and explicit:
            names[key] = explicit
        elif isinstance(service, str):
            names[key] = f"{service}-{stage or DEFAULT_STAGE}-{key}"
    return names
