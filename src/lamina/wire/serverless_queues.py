"""serverless.yml's queues: Lamina's own `queues:` form (Serverless has none) and
CloudFormation `AWS::SQS::Queue` resources. Part of `wire.serverless`; docs/queues.md points
here.

    queues:
      jobs:                        # deployed as <service>-<stage>-jobs (`name:` to choose)
        visibilityTimeout: 30      # seconds, 0-43200
        maxReceiveCount: 3         # redrive after this many receives (3 if left out)
        deadLetterQueue: jobs-dlq  # another key here, a queue name or an ARN
        fifo: false                # true: the name ends in .fifo
        messageRetentionPeriod: 345600
        delaySeconds: 0

Resources: `QueueName`, `VisibilityTimeout`, `FifoQueue`, `MessageRetentionPeriod`,
`DelaySeconds` and `RedrivePolicy` are read; other resource types are not created (a
warning). Other parts of the file name a queue by its key here, its logical id
(`Fn::GetAtt: [Id, Arn]`, `Ref: Id`), its name or its ARN: `Queues.name` resolves them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from lamina.wire.deployment import QueueSpec

Path = tuple[str | int, ...]

QUEUE_KEYS = frozenset(
    {
        "name",
        "visibilityTimeout",
        "maxReceiveCount",
        "deadLetterQueue",
        "fifo",
        "messageRetentionPeriod",
        "delaySeconds",
    }
)
QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
FIFO_SUFFIX = ".fifo"
DEFAULT_MAX_RECEIVE_COUNT = 3
SQS_QUEUE_TYPE = "AWS::SQS::Queue"
# Lamina has one account; its queues are found by name, so the ARNs it writes carry this one.
ACCOUNT = "000000000000"

_INTEGERS: dict[str, tuple[str, int, int]] = {
    # key: (field of QueueSpec, low, high)
    "visibilityTimeout": ("visibility_timeout", 0, 43_200),
    "messageRetentionPeriod": ("message_retention", 60, 1_209_600),
    "delaySeconds": ("delay", 0, 900),
    "maxReceiveCount": ("max_receive_count", 1, 1000),
}
_CFN_INTEGERS = {
    "VisibilityTimeout": "visibilityTimeout",
    "MessageRetentionPeriod": "messageRetentionPeriod",
    "DelaySeconds": "delaySeconds",
}


class Reporter(Protocol):
    """`wire.serverless._Report`."""

    def problem(self, path: Path, rule: str, value: object = ...) -> None: ...
    def warn(self, path: Path, text: str) -> None: ...
    def unknown_keys(
        self, mapping: Mapping[Any, Any], known: frozenset[str], path: Path
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class Queues:
    specs: tuple[QueueSpec, ...] = ()
    refs: Mapping[str, str] | None = None  # key, logical id or name -> deployed name
    region: str = "us-east-1"

    def name(self, ref: object) -> str | None:
        """The deployed name a reference (key, logical id, intrinsic) stands for, if it
        names one of the file's queues."""
        refs = self.refs or {}
        if isinstance(ref, str):
            return refs.get(ref)
        if isinstance(ref, Mapping) and len(ref) == 1:
            [(kind, value)] = ref.items()
            if kind == "Ref" and isinstance(value, str):
                return refs.get(value)
            if kind == "Fn::GetAtt" and isinstance(value, list) and len(value) == 2:
                return refs.get(str(value[0])) if value[1] in ("Arn", "QueueName") else None
        return None

    def arn(self, name: str) -> str:
        return f"arn:aws:sqs:{self.region}:{ACCOUNT}:{name}"


def is_int(value: object) -> bool:
    """An integer, and not a boolean (which Python counts as one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def service_queues(
    r: Reporter,
    root: Mapping[Any, Any],
    service: str | None,
    stage: str,
    region: str,
) -> Queues:
    """The queues of `queues:` and of `resources` (`AWS::SQS::Queue`)."""
    declared: list[tuple[Path, str, dict[str, Any]]] = []  # (path, reference key, settings)
    simple = root.get("queues")
    if simple is not None and not isinstance(simple, Mapping):
        r.problem(("queues",), "must be a map of queue keys to their settings", simple)
    for key, settings in (simple or {}).items() if isinstance(simple, Mapping) else ():
        path: Path = ("queues", str(key))
        if settings is None:
            settings = {}
        if not isinstance(settings, Mapping):
            r.problem(path, "must be a map of queue settings", settings)
            continue
        r.unknown_keys(settings, QUEUE_KEYS, path)
        declared.append((path, str(key), dict(settings)))
    declared += _resource_queues(r, root)
    names: dict[str, str] = {}
    for _, key, settings in declared:
        explicit = settings.get("name")
        name = explicit if isinstance(explicit, str) else f"{service}-{stage}-{key}"
        if settings.get("fifo") is True and not name.endswith(FIFO_SUFFIX):
            name += FIFO_SUFFIX
        names[key] = name
    refs = {**{n: n for n in names.values()}, **names}
    queues = Queues(refs=refs, region=region)
    specs = [_queue(r, path, names[key], settings, queues) for path, key, settings in declared]
    seen: dict[str, Path] = {}
    for (path, _, _), spec in zip(declared, specs, strict=True):
        if spec is None:
            continue
        if spec.name in seen:
            r.problem(
                path, f"queue name {spec.name!r} is already used by {_dotted(seen[spec.name])}"
            )
        seen[spec.name] = path
    return replace(queues, specs=tuple(s for s in specs if s is not None))


def _resource_queues(
    r: Reporter, root: Mapping[Any, Any]
) -> list[tuple[Path, str, dict[str, Any]]]:
    resources = root.get("resources")
    if resources is None:
        return []
    inner = resources.get("Resources") if isinstance(resources, Mapping) else None
    found: list[tuple[Path, str, dict[str, Any]]] = []
    others: list[str] = []
    for logical_id, resource in (inner or {}).items() if isinstance(inner, Mapping) else ():
        if not isinstance(resource, Mapping) or resource.get("Type") != SQS_QUEUE_TYPE:
            others.append(str(logical_id))
            continue
        path: Path = ("resources", "Resources", str(logical_id))
        props = resource.get("Properties") or {}
        if not isinstance(props, Mapping):
            r.problem((*path, "Properties"), "must be a map", props)
            continue
        settings: dict[str, Any] = {
            simple: props[cfn] for cfn, simple in _CFN_INTEGERS.items() if cfn in props
        }
        if "QueueName" in props:
            settings["name"] = props["QueueName"]
        if props.get("FifoQueue") in (True, "true"):
            settings["fifo"] = True
        redrive = props.get("RedrivePolicy")
        if isinstance(redrive, Mapping):
            settings["deadLetterQueue"] = redrive.get("deadLetterTargetArn")
            count = redrive.get("maxReceiveCount")
            settings["maxReceiveCount"] = (
                int(count) if isinstance(count, str) and count.isdigit() else count
            )
        found.append((path, str(logical_id), settings))
    if not found:
        r.warn(("resources",), "CloudFormation resources are not created by Lamina; ignored")
    elif others:
        r.warn(
            ("resources",),
            f"CloudFormation resources other than {SQS_QUEUE_TYPE} are not created by Lamina; "
            f"ignored: {', '.join(others)}",
        )
    return found


def _queue(
    r: Reporter, path: Path, name: str, settings: Mapping[str, Any], queues: Queues
) -> QueueSpec | None:
    problems = 0
    base = name.removesuffix(FIFO_SUFFIX)
    if "${" not in name and not QUEUE_NAME.fullmatch(base):
        r.problem(
            path,
            f"the queue name {name!r} must be 1-80 letters, digits, '-' and '_' "
            "(plus .fifo for a FIFO queue)",
        )
        problems += 1
    values: dict[str, Any] = {}
    for key, (field, low, high) in _INTEGERS.items():
        value = settings.get(key)
        if value is None:
            continue
        if not is_int(value) or not low <= value <= high:
            r.problem((*path, key), f"must be an integer between {low} and {high}", value)
            problems += 1
            continue
        values[field] = value
    fifo = settings.get("fifo", False)
    if not isinstance(fifo, bool):
        r.problem((*path, "fifo"), "must be true or false", fifo)
        problems += 1
    dlq = settings.get("deadLetterQueue")
    dead_letter: str | None = None
    if dlq is not None:
        dead_letter = queues.name(dlq) or (dlq if isinstance(dlq, str) and dlq else None)
        if dead_letter is None:
            r.problem(
                (*path, "deadLetterQueue"),
                "must be a queue of this file (key or logical id), a queue name or an ARN",
                dlq,
            )
            problems += 1
        elif "max_receive_count" not in values:
            values["max_receive_count"] = DEFAULT_MAX_RECEIVE_COUNT
    elif "max_receive_count" in values:
        r.problem((*path, "maxReceiveCount"), "needs a deadLetterQueue to redrive to")
        problems += 1
    if problems:
        return None
    return QueueSpec(name=name, fifo=bool(fifo), dead_letter_queue=dead_letter, **values)


def _dotted(path: Path) -> str:
    return ".".join(str(p) for p in path)
