"""Serverless Framework v3 `serverless.yml`: the file as a line-numbered tree, and the
`Service` model built from it.

Pure: `load_document` parses text into a `Document` (the tree plus the line of every key and
list item); `wire.variables.resolve` replaces `${...}` variables in it; `build_service`
validates the result and returns a `Service`, or raises one `ServerlessConfigError` listing
every problem found, each as
`serverless.yml:12: functions.hello.memorySize = 20: must be between 128 and 10240 MB`.

Defaults are Serverless's, not Lambda's: 1024 MB, 6 seconds, stage `dev`, region
`us-east-1`, function name `<service>-<stage>-<key>`, HTTP API payload `'2.0'`.

Keys Serverless knows but Lamina does not apply are accepted; those a user would miss
(`resources`, event types not supported yet, authorizers) become warnings, never silent
drops. Keys Serverless does not know become warnings with a suggestion, or errors under
`configValidationMode: error`, as in Serverless. PHP runtimes are Bref's: the plugin's
`php-8x[-fpm|-console]` shorthands become `provided.al2` plus a marker layer for Lamina's
built-in runtime of that name, as the plugin does with its layers, and `${bref:layer.*}`
layers resolve to the same markers (see `core.runtimes`).
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from lamina.core.errors import InvalidParameterValueException
from lamina.core.models import RUNTIMES
from lamina.core.routes import ANY, DEFAULT_ROUTE, AlbConditions, PayloadVersion, Route
from lamina.core.validation import (
    ENV_KEY,
    ENV_TOTAL_BYTES,
    FUNCTION_NAME,
    LAYER_NAME,
    MAX_LAYERS,
    MEMORY_RANGE,
    RESERVED_ENV,
    TIMEOUT_RANGE,
)
from lamina.wire import serverless_queues as queue_specs
from lamina.wire import serverless_triggers as triggers
from lamina.wire.deployment import AsyncConfig, QueueSpec, ScheduleTrigger, SqsTrigger

DEFAULT_STAGE = "dev"
DEFAULT_REGION = "us-east-1"
DEFAULT_MEMORY_SIZE = 1024
DEFAULT_TIMEOUT = 6
MAX_DESCRIPTION = 256

# Serverless's own patterns for these names (lib/config-schema.js).
SERVICE_NAME = re.compile(r"[a-zA-Z][0-9a-zA-Z-]+")
STAGE_NAME = re.compile(r"[a-zA-Z0-9-]+")
FUNCTION_KEY = re.compile(r"[a-zA-Z0-9-_]+")

# Bref's runtime shorthands (v2 and v3); the Bref plugin turns them into `provided.al2*`
# plus a PHP layer, Lamina into `provided.al2` plus the marker of its built-in runtime.
PHP_RUNTIME = re.compile(r"php-(?:7[0-9]|8[0-9])(?:-fpm|-console)?")
# `${bref:layer.php-82}` resolves to this prefix plus the layer name (see wire.variables).
RUNTIME_LAYER_PREFIX = "arn:lamina:runtime:"
ARCHITECTURES = ("x86_64", "arm64")
# CloudWatch Logs' allowed retention periods.
LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192}
    | {2557, 2922, 3288, 3653}
)
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY")
ALB_PRIORITY = (1, 50000)
KNOWN_PLUGINS = frozenset({"./vendor/bref/bref", "./vendor/bref/extra-php-extensions"})


def _words(text: str) -> list[str]:
    return text.split()


ROOT_KEYS = frozenset(
    _words(
        "service frameworkVersion provider functions layers package plugins custom resources "
        "useDotenv configValidationMode deprecationNotificationMode disabledDeprecations "
        "variablesResolutionMode unresolvedVariablesNotificationMode params stages outputs "
        "app org console dashboard bref constructs queues"
    )
)

PROVIDER_KEYS = frozenset(
    _words(
        "name stage region profile runtime runtimeManagement memorySize timeout architecture "
        "environment layers logRetentionInDays logDataProtectionPolicy versionFunctions "
        "deploymentMethod deploymentBucket deploymentPrefix iam iamRoleStatements "
        "iamManagedPolicies role rolePermissionsBoundary cfnRole tags stackTags stackName "
        "stackPolicy stackParameters tracing logs httpApi apiGateway apiName alb vpc "
        "vpcEndpointIds endpointType kmsKeyArn lambdaHashingVersion notificationArns "
        "disableRollback rollbackConfiguration s3 ecr eventBridge websocket websocketsApiName "
        "websocketsApiRouteSelectionExpression websocketsDescription usagePlan apiKeys "
        "resourcePolicy cloudFront"
    )
)

FUNCTION_KEYS = frozenset(
    _words(
        "handler name description runtime runtimeManagement memorySize timeout environment "
        "layers architecture events package reservedConcurrency provisionedConcurrency "
        "maximumRetryAttempts maximumEventAge destinations onError ephemeralStorageSize "
        "disableLogs logRetentionInDays logDataProtectionPolicy tags url image role vpc "
        "tracing kmsKeyArn fileSystemConfig snapStart condition dependsOn"
    )
)

HTTP_API_KEYS = frozenset(
    _words(
        "payload cors name authorizers disableDefaultEndpoint id metrics "
        "shouldStartNameWithService useProviderTags"
    )
)
PACKAGE_KEYS = frozenset(
    {"patterns", "individually", "artifact", "include", "exclude", "excludeDevDependencies"}
)
LAYER_KEYS = frozenset(
    _words(
        "path name description compatibleRuntimes compatibleArchitectures licenseInfo retain "
        "allowedAccounts package"
    )
)
HTTP_EVENT_KEYS = frozenset(
    _words("path method cors private async authorizer integration request response operationId")
)
HTTP_API_EVENT_KEYS = frozenset({"method", "path", "authorizer"})
ALB_EVENT_KEYS = frozenset(
    {"listenerArn", "priority", "conditions", "multiValueHeaders", "healthCheck", "authorizer"}
)
ALB_CONDITION_KEYS = frozenset({"path", "method", "host", "header", "query", "ip"})
# Serverless v3's other event types: recognised, applied by a later Lamina release.
LATER_EVENTS = frozenset(
    _words(
        "sns s3 stream websocket eventBridge cloudwatchEvent cloudwatchLog "
        "cognitoUserPool alexaSkill alexaSmartHome iot iotFleetProvisioning kafka msk "
        "activemq rabbitmq cloudFront"
    )
)
ROUTE_EVENTS = frozenset({"http", "httpApi", "alb"})
TRIGGER_EVENTS = frozenset({"schedule", "sqs"})  # read by `wire.serverless_triggers`

VALIDATION_MODES = ("warn", "error", "off")
UNRESOLVED_HINT = " (variables are not resolved yet)"
IAM_KEYS = ("iam", "iamRoleStatements", "iamManagedPolicies", "role")

Path = tuple[str | int, ...]


class ServerlessConfigError(InvalidParameterValueException):
    """Every problem found in one configuration file, each naming file, line, key and rule."""

    def __init__(self, problems: list[str], warnings: Sequence[str] = ()) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
        self.warnings = tuple(warnings)  # reported too: an unknown key is often the cause


# --- the model -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PackageSpec:
    """`package:` of the service, a function or a layer."""

    patterns: tuple[str, ...] = ()  # ordered globs; `!` excludes, later patterns win
    individually: bool = False
    artifact: str | None = None  # a prebuilt zip, relative to the service directory


@dataclass(frozen=True, slots=True)
class LayerDefinition:
    """A layer of the service itself (`layers.<key>`), built from a directory."""

    key: str
    name: str
    path: str | None  # directory relative to the service directory; None with an artifact
    description: str = ""
    compatible_runtimes: tuple[str, ...] = ()
    package: PackageSpec = PackageSpec()


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    key: str  # the key under `functions:`
    name: str  # the deployed function name
    handler: str
    runtime: str
    memory_size: int
    timeout: int
    environment: dict[str, str]  # provider's merged under the function's, stringified
    layers: tuple[str, ...]  # layer version ARNs, or "layer:<key>" for the file's own layers
    description: str = ""
    reserved_concurrency: int | None = None
    provisioned_concurrency: int | None = None
    routes: tuple[Route, ...] = ()
    package: PackageSpec = PackageSpec()
    architecture: str = "x86_64"
    schedules: tuple[ScheduleTrigger, ...] = ()
    sqs: tuple[SqsTrigger, ...] = ()
    async_config: AsyncConfig | None = None


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    stage: str
    region: str
    functions: dict[str, FunctionSpec]
    layers: dict[str, LayerDefinition] = field(default_factory=dict)
    queues: tuple[QueueSpec, ...] = ()
    package: PackageSpec = PackageSpec()
    version_functions: bool = True
    use_dotenv: bool = False
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # what Lamina accepts but ignores, said once
    blockers: tuple[str, ...] = ()  # problems that stop a deploy but not `info` or `remove`


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed serverless.yml. `root` is mutable: the variables resolver fills it in."""

    root: dict[Any, Any]
    lines: dict[Path, int]  # line (1-based) of each key and list item, as written
    file_name: str = "serverless.yml"
    resolved: bool = False  # True once `${...}` variables have been replaced

    def line(self, path: Path) -> int | None:
        """The line of `path`, or of its nearest ancestor written in the file (a value that
        came from a variable has no line of its own)."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None


def dotted(path: Path) -> str:
    """`functions.api.events[0].httpApi`, the form problems name keys in."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def layer_logical_id(key: str) -> str:
    """Serverless's CloudFormation name for layer `key`: `my-layer` -> `MyDashlayerLambdaLayer`."""
    name = key.replace("-", "Dash").replace("_", "Underscore")
    return f"{name[:1].upper()}{name[1:]}LambdaLayer"


# --- YAML with line numbers ------------------------------------------------------------------


class _Map(dict[Any, Any]):
    """A mapping that remembers the line (1-based) of each of its keys."""

    __slots__ = ("key_lines",)

    def __init__(self) -> None:
        super().__init__()
        self.key_lines: dict[Any, int] = {}


class _Seq(list[Any]):
    """A sequence that remembers the line (1-based) of each of its items."""

    __slots__ = ("item_lines",)

    def __init__(self) -> None:
        super().__init__()
        self.item_lines: list[int] = []


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


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> Iterator[_Seq]:
    data = _Seq()
    yield data
    for item in node.value:
        data.append(loader.construct_object(item, deep=True))
        data.item_lines.append(item.start_mark.line + 1)


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
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
_Loader.add_multi_constructor("!", _construct_cloudformation)


def load_yaml(text: str, file_name: str) -> Any:
    """Any YAML text read as Serverless reads it (YAML 1.2 booleans, CloudFormation tags,
    duplicate keys refused). Raises `ServerlessConfigError` naming the line."""
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
    return root


def _index_lines(node: object, path: Path, lines: dict[Path, int], seen: set[int]) -> None:
    if id(node) in seen:  # an alias (`*anchor`) that contains itself
        return
    seen.add(id(node))
    if isinstance(node, _Map):
        for key, value in node.items():
            lines[(*path, key)] = node.key_lines[key]
            _index_lines(value, (*path, key), lines, seen)
    elif isinstance(node, _Seq):
        for index, (value, line) in enumerate(zip(node, node.item_lines, strict=True)):
            lines[(*path, index)] = line
            _index_lines(value, (*path, index), lines, seen)
    seen.discard(id(node))


def load_document(text: str, file_name: str = "serverless.yml") -> Document:
    root = load_yaml(text, file_name)
    if root is None:
        raise ServerlessConfigError([f"{file_name}: the file is empty"])
    if not isinstance(root, _Map):
        raise ServerlessConfigError([f"{file_name}:1: must be a map of keys to values"])
    lines: dict[Path, int] = {}
    _index_lines(root, (), lines, set())
    return Document(root=root, lines=lines, file_name=file_name)


# --- reporting -------------------------------------------------------------------------------

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


class _Report:
    def __init__(self, document: Document) -> None:
        self.document = document
        self.validation_mode = "warn"
        self._problems: list[tuple[int, str]] = []
        self._warnings: list[tuple[int, str]] = []
        self._notes: list[tuple[int, str]] = []
        self._blockers: list[tuple[int, str]] = []

    @staticmethod
    def _in_order(entries: list[tuple[int, str]]) -> list[str]:
        """In file order, which is how a reader fixes them."""
        return [message for _, message in sorted(entries, key=lambda p: p[0])]

    @property
    def problems(self) -> list[str]:
        return self._in_order(self._problems)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(self._in_order(self._warnings))

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(self._in_order(self._notes))

    @property
    def blockers(self) -> tuple[str, ...]:
        return tuple(self._in_order(self._blockers))

    @property
    def problem_count(self) -> int:
        return len(self._problems)

    def _entry(self, path: Path, text: str, value: object = _MISSING) -> tuple[int, str]:
        line = self.document.line(path)
        place = f"{self.document.file_name}:{line}" if line else self.document.file_name
        subject = dotted(path)
        if value is not _MISSING:
            subject += f" = {_show(value)}"
        return line or 0, f"{place}: {subject}: {text}" if subject else f"{place}: {text}"

    def problem(self, path: Path, rule: str, value: object = _MISSING) -> None:
        if not self.document.resolved and isinstance(value, str) and "${" in value:
            rule += UNRESOLVED_HINT
        self._problems.append(self._entry(path, rule, value))

    def warn(self, path: Path, text: str) -> None:
        self._warnings.append(self._entry(path, text))

    def note(self, path: Path, text: str) -> None:
        self._notes.append(self._entry(path, text))

    def block(self, path: Path, text: str) -> None:
        self._blockers.append(self._entry(path, text))

    def strict_warn(self, path: Path, text: str) -> None:
        """A warning, or a problem under `configValidationMode: error`; nothing when `off`."""
        if self.validation_mode == "off":
            return
        target = self._problems if self.validation_mode == "error" else self._warnings
        target.append(self._entry(path, text))

    def unknown_keys(self, mapping: Mapping[Any, Any], known: frozenset[str], path: Path) -> None:
        by_lower = {k.lower(): k for k in known}
        for key in mapping:
            if key in known:
                continue
            close = difflib.get_close_matches(str(key).lower(), by_lower, n=1, cutoff=0.6)
            hint = f"; did you mean '{by_lower[close[0]]}'?" if close else ""
            self.strict_warn((*path, key), f"unknown key{hint}")


# --- typed access ----------------------------------------------------------------------------


def _get(mapping: Mapping[Any, Any], key: str) -> Any:
    """The value of an optional key; an explicit `null` counts as absent, as in Serverless."""
    value = mapping.get(key)
    return _MISSING if value is None else value


def _string(r: _Report, mapping: Mapping[Any, Any], key: str, path: Path) -> str | None:
    value = _get(mapping, key)
    if value is _MISSING:
        return None
    if not isinstance(value, str):
        r.problem((*path, key), "must be a string", value)
        return None
    return value


def _boolean(r: _Report, mapping: Mapping[Any, Any], key: str, path: Path) -> bool | None:
    value = _get(mapping, key)
    if value is _MISSING:
        return None
    if not isinstance(value, bool):
        r.problem((*path, key), "must be true or false", value)
        return None
    return value


def _integer(
    r: _Report,
    mapping: Mapping[Any, Any],
    key: str,
    path: Path,
    bounds: tuple[int, int],
    unit: str,
) -> int | None:
    value = _get(mapping, key)
    if value is _MISSING:
        return None
    low, high = bounds
    where = (*path, key)
    if not isinstance(value, int) or isinstance(value, bool):
        r.problem(where, f"must be an integer ({unit})" if unit else "must be an integer", value)
        return None
    if not low <= value <= high:
        r.problem(where, f"must be between {low} and {high}{' ' + unit if unit else ''}", value)
        return None
    return value


def _choice(
    r: _Report, mapping: Mapping[Any, Any], key: str, path: Path, choices: tuple[str, ...]
) -> str | None:
    value = _get(mapping, key)
    if value is _MISSING:
        return None
    if value not in choices:
        r.problem((*path, key), f"must be one of {', '.join(choices)}", value)
        return None
    return str(value)


def _mapping(
    r: _Report, parent: Mapping[Any, Any], key: str, path: Path
) -> Mapping[Any, Any] | None:
    value = _get(parent, key)
    if value is _MISSING:
        return None
    if not isinstance(value, Mapping):
        r.problem((*path, key), "must be a map", value)
        return None
    return value


def _strings(
    r: _Report, mapping: Mapping[Any, Any], key: str, path: Path, *, single: bool = False
) -> tuple[str, ...] | None:
    """A list of strings (or, when `single`, one string standing for a list of one)."""
    value = _get(mapping, key)
    if value is _MISSING:
        return None
    if single and isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        rule = "must be a string or a list of strings" if single else "must be a list of strings"
        r.problem((*path, key), rule, value)
        return None
    result: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            r.problem((*path, key, index), "must be a string", item)
        else:
            result.append(item)
    return tuple(result)


def js_string(value: object) -> str | None:
    """JavaScript's `String(x)` for a scalar: how Serverless turns values into strings (for
    Lambda's environment, and for variables inside a longer string); None for others."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return None


def _is_intrinsic(value: object) -> bool:
    return (
        isinstance(value, Mapping)
        and len(value) == 1
        and ("Ref" in value or any(str(k).startswith("Fn::") for k in value))
    )


# --- provider --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Defaults:
    runtime: str | None
    runtime_invalid: bool
    memory_size: int
    timeout: int
    environment: dict[str, str]
    layers: tuple[str, ...]
    architecture: str
    payload_version: PayloadVersion
    http_api_cors: bool


def _runtime(r: _Report, mapping: Mapping[Any, Any], path: Path) -> str | None:
    value = _string(r, mapping, "runtime", path)
    if value is not None and value not in RUNTIMES and not PHP_RUNTIME.fullmatch(value):
        choices = ", ".join(sorted(RUNTIMES))
        r.problem(
            (*path, "runtime"),
            f"must be one of {choices}, or a Bref PHP runtime (php-84, php-84-fpm, php-84-console)",
            value,
        )
        return None
    return value


def _environment(r: _Report, mapping: Mapping[Any, Any], path: Path) -> dict[str, str] | None:
    value = _get(mapping, "environment")
    if value is _MISSING:
        return None
    where = (*path, "environment")
    if not isinstance(value, Mapping):
        r.problem(where, "must be a map", value)
        return None
    result: dict[str, str] = {}
    for key, raw in value.items():
        if not isinstance(key, str) or not ENV_KEY.fullmatch(key):
            r.problem(
                (*where, key),
                "names must start with a letter and have at least 2 characters of "
                "letters, digits and '_'",
            )
            continue
        if key in RESERVED_ENV:
            r.problem((*where, key), "is a reserved variable Lambda sets itself")
            continue
        if raw is None:
            continue  # `${env:X, null}` is how a file leaves a variable out
        text = js_string(raw)
        if text is None:
            rule = (
                "CloudFormation functions (Ref, Fn::*) are not supported by Lamina"
                if _is_intrinsic(raw)
                else "must be a string, number or boolean"
            )
            r.problem((*where, key), rule, raw)
            continue
        result[key] = text
    return result


def _layers(
    r: _Report, mapping: Mapping[Any, Any], path: Path, own: Mapping[str, str]
) -> tuple[str, ...] | None:
    """Layer ARNs and `{Ref: <Key>LambdaLayer}` references (as "layer:<key>"); `own` maps
    the logical ids of the file's layers to their keys."""
    value = _get(mapping, "layers")
    if value is _MISSING:
        return None
    where = (*path, "layers")
    if not isinstance(value, list):
        r.problem(where, "must be a list of layer version ARNs", value)
        return None
    arns: list[str] = []
    for index, item in enumerate(value):
        if isinstance(item, str) and item:
            arns.append(item)
        elif isinstance(item, Mapping) and list(item) == ["Ref"]:
            key = own.get(str(item["Ref"]))
            if key is None:
                known = ", ".join(sorted(own)) or "none"
                r.problem(
                    (*where, index),
                    f"refers to no layer of this file (its layers: {known})",
                    item["Ref"],
                )
            else:
                arns.append(f"layer:{key}")
        else:
            r.problem(
                (*where, index),
                "must be a layer version ARN or {Ref: <Key>LambdaLayer}",
                item,
            )
    if len(value) > MAX_LAYERS:
        r.problem(where, f"a function may use at most {MAX_LAYERS} layers", len(value))
    return tuple(arns)


def _http_api_settings(r: _Report, provider: Mapping[Any, Any]) -> tuple[PayloadVersion, bool]:
    settings = _mapping(r, provider, "httpApi", ("provider",))
    if settings is None:
        return "2.0", False
    path: Path = ("provider", "httpApi")
    r.unknown_keys(settings, HTTP_API_KEYS, path)
    payload: PayloadVersion = "2.0"
    raw = _get(settings, "payload")
    # YAML reads an unquoted `payload: 2.0` as a number; it means the same.
    if raw in ("1.0", 1.0):
        payload = "1.0"
    elif raw is not _MISSING and raw not in ("2.0", 2.0):
        r.problem((*path, "payload"), "must be '1.0' or '2.0'", raw)
    cors = _get(settings, "cors")
    if cors is not _MISSING and not isinstance(cors, bool | Mapping):
        r.problem((*path, "cors"), "must be true, false or a map of CORS settings", cors)
    _string(r, settings, "name", path)
    if "authorizers" in settings:
        r.warn((*path, "authorizers"), "authorizers are not supported yet; routes stay public")
    return payload, bool(cors) if cors is not _MISSING else False


def _provider(r: _Report, root: Mapping[Any, Any], own_layers: Mapping[str, str]) -> _Defaults:
    found = _mapping(r, root, "provider", ())
    path: Path = ("provider",)
    provider: Mapping[Any, Any] = {} if found is None else found
    if found is None:
        if root.get("provider") is None:
            r.problem(path, "required (with `name: aws`)")
    else:
        r.unknown_keys(provider, PROVIDER_KEYS, path)
        name = provider.get("name", _MISSING)
        if name is _MISSING:
            r.problem((*path, "name"), "required; must be 'aws'")
        elif name != "aws":
            r.problem((*path, "name"), "must be 'aws'", name)
    before = r.problem_count
    runtime = _runtime(r, provider, path)
    runtime_invalid = r.problem_count > before
    memory = _integer(r, provider, "memorySize", path, MEMORY_RANGE, "MB")
    timeout = _integer(r, provider, "timeout", path, TIMEOUT_RANGE, "seconds")
    environment = _environment(r, provider, path)
    layers = _layers(r, provider, path, own_layers)
    architecture = _choice(r, provider, "architecture", path, ARCHITECTURES)
    payload, cors = _http_api_settings(r, provider)
    _mapping(r, provider, "apiGateway", path)
    _log_retention(r, provider, path)
    _boolean(r, provider, "versionFunctions", path)
    _tags(r, provider, path)
    for key in IAM_KEYS:
        if key in provider:
            r.note((*path, key), "IAM roles and statements are accepted but not enforced by Lamina")
    return _Defaults(
        runtime=runtime,
        runtime_invalid=runtime_invalid,
        memory_size=DEFAULT_MEMORY_SIZE if memory is None else memory,
        timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
        environment=environment or {},
        layers=layers or (),
        architecture=architecture or "x86_64",
        payload_version=payload,
        http_api_cors=cors,
    )


def _log_retention(r: _Report, mapping: Mapping[Any, Any], path: Path) -> None:
    value = _get(mapping, "logRetentionInDays")
    if value is not _MISSING and value not in LOG_RETENTION_DAYS:
        allowed = ", ".join(str(d) for d in sorted(LOG_RETENTION_DAYS))
        r.problem((*path, "logRetentionInDays"), f"must be one of {allowed}", value)


def _tags(r: _Report, mapping: Mapping[Any, Any], path: Path) -> None:
    tags = _mapping(r, mapping, "tags", path)
    for key, value in (tags or {}).items():
        if value is not None and js_string(value) is None:
            r.problem((*path, "tags", key), "must be a string, number or boolean", value)


# --- package and layers ----------------------------------------------------------------------


def _package(r: _Report, parent: Mapping[Any, Any], path: Path) -> PackageSpec:
    package = _mapping(r, parent, "package", path)
    if package is None:
        return PackageSpec()
    where = (*path, "package")
    r.unknown_keys(package, PACKAGE_KEYS, where)
    patterns = list(_strings(r, package, "patterns", where) or ())
    # v2's include/exclude still work in v3, as patterns placed before `patterns`.
    legacy: list[str] = []
    for key, prefix in (("exclude", "!"), ("include", "")):
        values = _strings(r, package, key, where)
        if values:
            r.warn((*where, key), "is deprecated; use package.patterns")
            legacy.extend(prefix + v for v in values)
    artifact = _string(r, package, "artifact", where)
    if artifact is not None and artifact.startswith("s3://"):
        r.problem((*where, "artifact"), "artifacts in S3 are not supported; give a local zip")
        artifact = None
    return PackageSpec(
        patterns=tuple(legacy + patterns),
        individually=bool(_boolean(r, package, "individually", where)),
        artifact=artifact,
    )


def _own_layers(r: _Report, root: Mapping[Any, Any]) -> dict[str, LayerDefinition]:
    layers = _mapping(r, root, "layers", ())
    result: dict[str, LayerDefinition] = {}
    for key, layer in (layers or {}).items():
        path: Path = ("layers", key)
        if not isinstance(key, str) or not key:
            r.problem(path, "layer keys must be strings")
            continue
        if not isinstance(layer, Mapping):
            r.problem(path, "must be a map with at least `path`", layer)
            continue
        r.unknown_keys(layer, LAYER_KEYS, path)
        before = r.problem_count
        package = _package(r, layer, path)
        directory = _string(r, layer, "path", path)
        if directory is None and package.artifact is None and "path" not in layer:
            r.problem((*path, "path"), "required (the directory the layer is built from)")
        name = _string(r, layer, "name", path) or key
        if not LAYER_NAME.fullmatch(name):
            r.problem(
                (*path, "name") if "name" in layer else path,
                "layer names must be 1-140 characters of letters, digits, '-' and '_'",
                name,
            )
        description = _string(r, layer, "description", path) or ""
        runtimes = _strings(r, layer, "compatibleRuntimes", path) or ()
        if r.problem_count == before:
            result[key] = LayerDefinition(
                key=key,
                name=name,
                path=directory,
                description=description,
                compatible_runtimes=runtimes,
                package=package,
            )
    return result


# --- events ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _RouteContext:
    service: str
    stage: str
    function_name: str
    payload_version: PayloadVersion
    http_api_cors: bool


def _http_path(
    r: _Report, path: Path, raw: str, *, leading_slash: bool, whole: str | None = None
) -> str | None:
    """A route path, normalised; `whole` is the `'METHOD path'` string it came from."""

    def bad(rule: str) -> None:
        if whole is None:
            r.problem(path, rule, raw)
        else:
            r.problem(path, f"the path {rule}", whole)

    if leading_slash and not raw.startswith("/"):
        bad("must start with '/'")
        return None
    value = "/" + raw.strip("/") if raw.strip("/") else "/"
    segments = value.strip("/").split("/") if value != "/" else []
    for index, segment in enumerate(segments):
        if not segment or any(c.isspace() or c in "?#" for c in segment):
            bad("must be a URL path such as /users/{id}")
            return None
        if segment.endswith("+}") and index != len(segments) - 1:
            bad("may have a greedy {name+} parameter only as its last segment")
            return None
    return value


def _method(r: _Report, path: Path, raw: object, whole: str | None = None) -> str | None:
    method = str(raw).upper() if isinstance(raw, str) else None
    if method == "*":
        method = ANY
    if method not in HTTP_METHODS:
        rule = f"must be one of {', '.join(HTTP_METHODS)}"
        if whole is None:
            r.problem(path, rule, raw)
        else:
            r.problem(path, f"the method {rule}", whole)
        return None
    return method


def _http_event(r: _Report, value: object, path: Path, ctx: _RouteContext) -> Route | None:
    cors = False
    raw_method: object
    raw_path: object
    if isinstance(value, str):
        parts = value.split()
        if len(parts) != 2:
            r.problem(path, "must be 'METHOD path', such as 'GET users/{id}'", value)
            return None
        raw_method, raw_path = parts
    elif isinstance(value, Mapping):
        r.unknown_keys(value, HTTP_EVENT_KEYS, path)
        raw_path = value.get("path")
        raw_method = value.get("method")
        if not isinstance(raw_path, str):
            r.problem((*path, "path"), "required; a URL path such as users/{id}", raw_path)
            return None
        if raw_method is None:
            r.problem((*path, "method"), "required; GET, POST, ... or ANY")
            return None
        cors = bool(value.get("cors"))
        integration = str(value.get("integration", "lambda-proxy")).lower()
        if integration not in ("lambda-proxy", "aws_proxy", "aws-proxy", "lambda_proxy"):
            r.warn(
                (*path, "integration"),
                f"integration {integration!r} is not supported; the route uses lambda-proxy",
            )
        for key in ("authorizer", "private"):
            if value.get(key):
                r.warn((*path, key), f"{key} is not supported yet; the route stays public")
    else:
        r.problem(path, "must be 'METHOD path' or a map with `path` and `method`", value)
        return None
    whole = value if isinstance(value, str) else None
    method = _method(r, path if whole else (*path, "method"), raw_method, whole)
    route_path = _http_path(
        r, path if whole else (*path, "path"), str(raw_path), leading_slash=False, whole=whole
    )
    if method is None or route_path is None:
        return None
    return Route(
        kind="http",
        service=ctx.service,
        stage=ctx.stage,
        function_name=ctx.function_name,
        method=method,
        path=route_path,
        payload_version="1.0",
        cors=cors,
    )


def _http_api_event(r: _Report, value: object, path: Path, ctx: _RouteContext) -> Route | None:
    def route(method: str, route_path: str) -> Route:
        return Route(
            kind="httpApi",
            service=ctx.service,
            stage=ctx.stage,
            function_name=ctx.function_name,
            method=method,
            path=route_path,
            payload_version=ctx.payload_version,
            cors=ctx.http_api_cors,
        )

    if isinstance(value, str):
        if value.strip() == "*":
            return route(ANY, DEFAULT_ROUTE)
        parts = value.split()
        if len(parts) != 2:
            r.problem(path, "must be '*' or 'METHOD /path', such as 'GET /users/{id}'", value)
            return None
        method = _method(r, path, parts[0], value)
        route_path = _http_path(r, path, parts[1], leading_slash=True, whole=value)
        return None if method is None or route_path is None else route(method, route_path)
    if not isinstance(value, Mapping):
        r.problem(path, "must be '*', 'METHOD /path' or a map with `method` and `path`", value)
        return None
    r.unknown_keys(value, HTTP_API_EVENT_KEYS, path)
    if value.get("authorizer"):
        r.warn((*path, "authorizer"), "authorizers are not supported yet; the route stays public")
    raw_path = value.get("path")
    raw_method = value.get("method", "*")
    if raw_path == "*":
        if str(raw_method).upper() not in ("*", ANY):
            r.problem((*path, "method"), "must be '*' when path is '*'", raw_method)
            return None
        return route(ANY, DEFAULT_ROUTE)
    if not isinstance(raw_path, str):
        r.problem((*path, "path"), "required; '*' or a path such as /users/{id}", raw_path)
        return None
    method = _method(r, (*path, "method"), raw_method)
    route_path = _http_path(r, (*path, "path"), raw_path, leading_slash=True)
    return None if method is None or route_path is None else route(method, route_path)


def _alb_conditions(r: _Report, value: Mapping[Any, Any], path: Path) -> AlbConditions | None:
    conditions = _mapping(r, value, "conditions", path)
    where = (*path, "conditions")
    if conditions is None:
        if "conditions" not in value:
            r.problem(where, "required; at least one of path, method, host, header, query, ip")
        return None
    r.unknown_keys(conditions, ALB_CONDITION_KEYS, where)
    before = r.problem_count
    paths = _strings(r, conditions, "path", where, single=True) or ()
    methods = _strings(r, conditions, "method", where, single=True) or ()
    hosts = _strings(r, conditions, "host", where, single=True) or ()
    ips = _strings(r, conditions, "ip", where, single=True) or ()
    for ip in ips:
        try:
            ipaddress.ip_network(ip, strict=False)
        except ValueError:
            r.problem((*where, "ip"), "must be CIDR blocks such as 10.0.0.0/8", ip)
    headers: tuple[tuple[str, tuple[str, ...]], ...] = ()
    header = _mapping(r, conditions, "header", where)
    if header is not None:
        name = header.get("name")
        values = header.get("values")
        if not isinstance(name, str) or not name:
            r.problem((*where, "header", "name"), "required; a header name", name)
        elif not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            r.problem((*where, "header", "values"), "required; a list of strings", values)
        else:
            headers = ((name, tuple(values)),)
    query: list[tuple[str, str]] = []
    for key, item in (_mapping(r, conditions, "query", where) or {}).items():
        text = js_string(item)
        if text is None:
            r.problem((*where, "query", key), "must be a string", item)
        else:
            query.append((str(key), text))
    if r.problem_count > before:
        return None
    result = AlbConditions(
        paths=paths,
        methods=tuple(m.upper() for m in methods),
        hosts=hosts,
        headers=headers,
        query=tuple(query),
        source_ips=ips,
    )
    if result == AlbConditions():
        r.problem(where, "needs at least one of path, method, host, header, query, ip")
        return None
    return result


def _alb_event(r: _Report, value: object, path: Path, ctx: _RouteContext) -> Route | None:
    if not isinstance(value, Mapping):
        r.problem(path, "must be a map with listenerArn, priority and conditions", value)
        return None
    r.unknown_keys(value, ALB_EVENT_KEYS, path)
    if value.get("listenerArn") is None:
        r.problem((*path, "listenerArn"), "required")
    priority = _integer(r, value, "priority", path, ALB_PRIORITY, "")
    if priority is None and "priority" not in value:
        r.problem((*path, "priority"), "required; an integer between 1 and 50000")
    conditions = _alb_conditions(r, value, path)
    multi_value = _boolean(r, value, "multiValueHeaders", path)
    if value.get("authorizer"):
        r.warn((*path, "authorizer"), "authorizers are not supported yet; the rule stays public")
    if priority is None or conditions is None:
        return None
    return Route(
        kind="alb",
        service=ctx.service,
        stage=ctx.stage,
        function_name=ctx.function_name,
        priority=priority,
        conditions=conditions,
        multi_value_headers=bool(multi_value),
    )


def _events(
    r: _Report, fn: Mapping[Any, Any], path: Path, ctx: _RouteContext
) -> list[tuple[Path, Route]]:
    value = _get(fn, "events")
    if value is _MISSING:
        return []
    where = (*path, "events")
    if not isinstance(value, list):
        r.problem(where, "must be a list of events", value)
        return []
    routes: list[tuple[Path, Route]] = []
    for index, item in enumerate(value):
        item_path = (*where, index)
        if not isinstance(item, Mapping) or len(item) != 1:
            r.problem(item_path, "must be a map with one event type, such as httpApi: 'GET /'")
            continue
        [(kind, event)] = item.items()
        event_path = (*item_path, kind)
        route: Route | None = None
        if kind == "http":
            route = _http_event(r, event, event_path, ctx)
        elif kind == "httpApi":
            route = _http_api_event(r, event, event_path, ctx)
        elif kind == "alb":
            route = _alb_event(r, event, event_path, ctx)
        elif kind in TRIGGER_EVENTS:
            pass
        elif kind in LATER_EVENTS:
            r.warn(event_path, f"{kind} events are not supported yet; this event is ignored")
        else:
            known = sorted(ROUTE_EVENTS | TRIGGER_EVENTS | LATER_EVENTS)
            close = difflib.get_close_matches(str(kind), known, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            r.strict_warn(event_path, f"unknown event type, ignored{hint}")
        if route is not None:
            routes.append((event_path, route))
    return routes


def _route_conflicts(r: _Report, routes: list[tuple[Path, Route]]) -> None:
    """Two functions on one route, or two ALB rules with one priority, are refused before a
    deploy rather than left for the gateway to pick one."""
    seen: dict[tuple[str, str, str], Path] = {}
    for path, route in routes:
        if route.kind == "alb":
            key = ("alb", "", str(route.priority))
            what = f"priority {route.priority}"
        else:
            key = (route.kind, route.method, route.path)
            what = f"{route.kind} route {route.route_key!r}"
        if key in seen:
            r.problem(path, f"{what} is already used by {dotted(seen[key])}")
        else:
            seen[key] = path


# --- functions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Scope:
    service: str | None
    stage: str
    defaults: _Defaults
    own_layers: Mapping[str, str]  # logical id -> layer key
    queues: queue_specs.Queues = field(default_factory=queue_specs.Queues)


def _handler(r: _Report, fn: Mapping[Any, Any], path: Path) -> str | None:
    handler = _string(r, fn, "handler", path)
    if handler is None and _get(fn, "handler") is _MISSING:
        if "image" in fn:
            r.problem((*path, "image"), "container images are not supported by Lamina")
        else:
            r.problem((*path, "handler"), "required")
    elif handler is not None and (
        not handler or len(handler) > 128 or any(c.isspace() for c in handler)
    ):
        r.problem((*path, "handler"), "must be 1-128 characters without whitespace", handler)
    return handler


def _function_name(r: _Report, fn: Mapping[Any, Any], key: str, scope: _Scope) -> str | None:
    path: Path = ("functions", key)
    explicit = _string(r, fn, "name", path)
    name = explicit or (f"{scope.service}-{scope.stage}-{key}" if scope.service else None)
    if name is not None and not FUNCTION_NAME.fullmatch(name):
        if explicit:
            r.problem(
                (*path, "name"), "must be 1-64 characters of letters, digits, '-' and '_'", name
            )
        else:
            r.problem(
                path,
                f"the function name {name!r} (<service>-<stage>-<key>) must be 1-64 "
                "characters of letters, digits, '-' and '_'; set `name:` to choose another",
            )
        return None
    return name


def _function(
    r: _Report, functions: Mapping[Any, Any], key: object, scope: _Scope
) -> tuple[FunctionSpec | None, list[tuple[Path, Route]]]:
    if not isinstance(key, str) or not FUNCTION_KEY.fullmatch(key):
        r.problem(("functions", str(key)), "function keys must be letters, digits, '-' and '_'")
        return None, []
    path: Path = ("functions", key)
    fn = functions[key]
    if not isinstance(fn, Mapping):
        r.problem(path, "must be a map with at least `handler`", fn)
        return None, []
    r.unknown_keys(fn, FUNCTION_KEYS, path)
    before = r.problem_count
    defaults = scope.defaults

    handler = _handler(r, fn, path)
    runtime = _runtime(r, fn, path)
    if runtime is None and _get(fn, "runtime") is _MISSING:
        runtime = defaults.runtime
        if runtime is None and not defaults.runtime_invalid:
            r.problem((*path, "runtime"), "required (set it here or in provider.runtime)")

    memory = _integer(r, fn, "memorySize", path, MEMORY_RANGE, "MB")
    timeout = _integer(r, fn, "timeout", path, TIMEOUT_RANGE, "seconds")
    own_environment = _environment(r, fn, path)
    environment = {**defaults.environment, **(own_environment or {})}
    size = sum(len(k.encode()) + len(v.encode()) for k, v in environment.items())
    # With variables still in place the final size is unknown; the server checks it then.
    if size > ENV_TOTAL_BYTES and (r.document.resolved or "${" not in str(environment)):
        r.problem(
            (*path, "environment") if "environment" in fn else path,
            f"names and values together (with provider.environment) must not exceed "
            f"{ENV_TOTAL_BYTES} bytes, not {size}",
        )
    layers = _layers(r, fn, path, scope.own_layers)
    description = _string(r, fn, "description", path)
    if description is not None and len(description) > MAX_DESCRIPTION:
        r.problem(
            (*path, "description"),
            f"must be at most {MAX_DESCRIPTION} characters, not {len(description)}",
        )
    reserved = _integer(r, fn, "reservedConcurrency", path, (0, 1_000_000), "")
    provisioned = _integer(r, fn, "provisionedConcurrency", path, (0, 1_000_000), "")
    architecture = _choice(r, fn, "architecture", path, ARCHITECTURES)
    package = _package(r, fn, path)
    _log_retention(r, fn, path)
    _tags(r, fn, path)
    name = _function_name(r, fn, key, scope)

    routes: list[tuple[Path, Route]] = []
    if scope.service is not None and name is not None:
        ctx = _RouteContext(
            service=scope.service,
            stage=scope.stage,
            function_name=name,
            payload_version=defaults.payload_version,
            http_api_cors=defaults.http_api_cors,
        )
        routes = _events(r, fn, path, ctx)
    found = triggers.function_triggers(r, fn, path, scope.queues, r.document.resolved)

    if r.problem_count > before or name is None or handler is None or runtime is None:
        return None, []
    spec = FunctionSpec(
        key=key,
        name=name,
        handler=handler,
        runtime=runtime,
        memory_size=defaults.memory_size if memory is None else memory,
        timeout=defaults.timeout if timeout is None else timeout,
        environment=environment,
        layers=defaults.layers if layers is None else layers,
        description=description or "",
        reserved_concurrency=reserved,
        provisioned_concurrency=provisioned,
        routes=tuple(route for _, route in routes),
        package=package,
        architecture=architecture or defaults.architecture,
        schedules=found.schedules,
        sqs=found.sqs,
        async_config=found.async_config,
    )
    return _php(spec), routes


def _php(spec: FunctionSpec) -> FunctionSpec:
    """What Bref's plugin does to `runtime: php-82-fpm`: the function runs on `provided.al2`
    with the runtime's layer first. Lamina's layer is a marker (`arn:lamina:runtime:`) for
    its built-in runtime; `${bref:layer.*}` layers already are such markers."""
    if not PHP_RUNTIME.fullmatch(spec.runtime):
        return spec
    marker = RUNTIME_LAYER_PREFIX + spec.runtime
    return replace(spec, runtime="provided.al2", layers=(marker, *spec.layers))


# --- the service -----------------------------------------------------------------------------


def _validation_mode(r: _Report, root: Mapping[Any, Any]) -> str:
    mode = root.get("configValidationMode", "warn")
    if mode not in VALIDATION_MODES:
        r.problem(("configValidationMode",), f"must be one of {', '.join(VALIDATION_MODES)}", mode)
        return "warn"
    return str(mode)


def _service_name(r: _Report, root: Mapping[Any, Any]) -> str | None:
    value = root.get("service", _MISSING)
    if value is _MISSING or value is None:
        r.problem(("service",), "required")
        return None
    if not isinstance(value, str) or not SERVICE_NAME.fullmatch(value):
        r.problem(
            ("service",), "must start with a letter and contain only letters, digits and '-'", value
        )
        return None
    return value


def _stage(r: _Report, provider: Mapping[Any, Any], option: str | None) -> str:
    if option is not None:
        if not STAGE_NAME.fullmatch(option):
            r.problem(("--stage",), "must contain only letters, digits and '-'", option)
        return option
    value = _string(r, provider, "stage", ("provider",))
    if value is None:
        return DEFAULT_STAGE
    if not STAGE_NAME.fullmatch(value):
        r.problem(("provider", "stage"), "must contain only letters, digits and '-'", value)
    return value


def _root_settings(r: _Report, root: Mapping[Any, Any]) -> None:
    """Root keys that change nothing in the model but must be well-formed or explained."""
    version = root.get("frameworkVersion")
    if version is not None:
        major = re.match(r"\D*(\d+)", str(version))
        if major and major.group(1) != "3":
            r.warn(
                ("frameworkVersion",),
                f"Lamina reads Serverless Framework v3 files; this one asks for {version!r}",
            )
    params = _mapping(r, root, "params", ())
    for stage, values in (params or {}).items():
        if values is not None and not isinstance(values, Mapping):
            r.problem(("params", stage), "must be a map of parameter names to values", values)
    _plugins(r, root)
    if root.get("constructs") is not None:
        r.warn(("constructs",), "Lift constructs are not supported yet; ignored")


def _plugins(r: _Report, root: Mapping[Any, Any]) -> None:
    value = _get(root, "plugins")
    if value is _MISSING:
        return
    modules = value.get("modules") if isinstance(value, Mapping) else value
    if not isinstance(modules, list):
        r.problem(("plugins",), "must be a list of plugin names", value)
        return
    for index, plugin in enumerate(modules):
        path: Path = ("plugins", index) if isinstance(value, list) else ("plugins", "modules")
        if not isinstance(plugin, str):
            r.problem(path, "must be a plugin name", plugin)
        elif plugin not in KNOWN_PLUGINS and not plugin.startswith("serverless-"):
            r.warn(path, f"plugin {plugin!r} is unknown to Lamina, which runs no plugins; ignored")


def build_service(
    document: Document, *, stage: str | None = None, region: str | None = None
) -> Service:
    """The service a document describes; `stage`/`region` are the `--stage`/`--region`
    options. Raises `ServerlessConfigError` with every problem found."""
    root = document.root
    r = _Report(document)
    r.validation_mode = _validation_mode(r, root)
    r.unknown_keys(root, ROOT_KEYS, ())
    service = _service_name(r, root)
    _root_settings(r, root)
    use_dotenv = _boolean(r, root, "useDotenv", ())
    layers = _own_layers(r, root)
    # Every key written, valid or not: a reference to a broken layer is not a second problem.
    written = root.get("layers") if isinstance(root.get("layers"), Mapping) else {}
    own = {layer_logical_id(key): key for key in written or {} if isinstance(key, str)}
    defaults = _provider(r, root, own)
    provider = root.get("provider")
    if not isinstance(provider, Mapping):
        provider = {}
    chosen_stage = _stage(r, provider, stage)
    chosen_region = region or _string(r, provider, "region", ("provider",))
    version_functions = provider.get("versionFunctions") is not False
    package = _package(r, root, ())
    _mapping(r, root, "custom", ())

    functions: dict[str, FunctionSpec] = {}
    routes: list[tuple[Path, Route]] = []
    functions_map = _mapping(r, root, "functions", ())
    queues = queue_specs.service_queues(
        r, root, service, chosen_stage, chosen_region or DEFAULT_REGION
    )
    scope = _Scope(
        service=service, stage=chosen_stage, defaults=defaults, own_layers=own, queues=queues
    )
    for key in functions_map or {}:
        spec, located = _function(r, functions_map or {}, key, scope)
        if spec is not None:
            functions[spec.key] = spec
            routes.extend(located)
    _route_conflicts(r, routes)
    functions = triggers.resolve_targets(functions, queues)

    if r.problem_count or service is None:
        raise ServerlessConfigError(r.problems, r.warnings)
    return Service(
        name=service,
        stage=chosen_stage,
        region=chosen_region or DEFAULT_REGION,
        functions=functions,
        layers=layers,
        queues=queues.specs,
        package=package,
        version_functions=version_functions,
        use_dotenv=bool(use_dotenv),
        warnings=r.warnings,
        notes=r.notes,
        blockers=r.blockers,
    )


def parse_service(
    text: str,
    file_name: str = "serverless.yml",
    *,
    stage: str | None = None,
    region: str | None = None,
) -> Service:
    """Read a serverless.yml as written, leaving `${...}` variables unresolved."""
    return build_service(load_document(text, file_name), stage=stage, region=region)


def function_names(
    text: str, file_name: str = "serverless.yml", *, stage: str | None = None
) -> dict[str, str]:
    """Function key -> deployed name, read leniently so that `-f key` works even while other
    parts of the file are invalid. Raises `ServerlessConfigError` only for broken YAML."""
    root = load_yaml(text, file_name)
    if not isinstance(root, Mapping):
        return {}
    service = root.get("service")
    provider = root.get("provider")
    functions = root.get("functions")
    if not isinstance(functions, Mapping):
        return {}
    if stage is None and isinstance(provider, Mapping):
        written = provider.get("stage")
        # A variable (`${opt:stage, 'dev'}`) cannot be read without resolving; assume dev.
        stage = written if isinstance(written, str) and "${" not in written else None
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
