"""Versions, aliases and qualifiers (reference 5.3): the rules, as pure functions.

A qualifier is `$LATEST`, a published version number (`"1"`, `"2"`, ...) or an alias name.
Published versions are immutable snapshots of `$LATEST`; an alias points at one version and
may send a share of its invocations to one more published version.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from lamina.core.errors import InvalidParameterValueException
from lamina.core.models import LATEST, FunctionConfig

ALIAS_NAME = re.compile(r"(?!^[0-9]+$)[a-zA-Z0-9_-]{1,128}")
VERSION = re.compile(r"[1-9][0-9]*")

# What a version snapshots: a new one is published only when one of these differs. Not the
# description: PublishVersion may give the version a description of its own.
SNAPSHOT_FIELDS = (
    "runtime",
    "handler",
    "code_sha256",
    "memory_size",
    "timeout",
    "environment",
    "layers",
)


@dataclass(frozen=True, slots=True)
class Alias:
    function_name: str
    name: str
    function_version: str
    description: str = ""
    # RoutingConfig.AdditionalVersionWeights: at most one other published version -> share.
    routing: dict[str, float] = field(default_factory=dict)
    revision_id: str = ""


def is_version(qualifier: str) -> bool:
    return VERSION.fullmatch(qualifier) is not None


def alias_name(name: object) -> str:
    if not isinstance(name, str) or not ALIAS_NAME.fullmatch(name):
        raise InvalidParameterValueException(
            f"Name = {name!r}: an alias name is 1-128 letters, digits, '-' and '_', "
            "and not only digits"
        )
    return name


def routing(weights: object, primary: str) -> dict[str, float]:
    """Checks RoutingConfig.AdditionalVersionWeights against the alias's primary version.

    Which versions exist is the caller's to check: this needs no store.
    """
    if weights is None:
        return {}
    if not isinstance(weights, Mapping):
        raise InvalidParameterValueException(
            f"RoutingConfig.AdditionalVersionWeights = {weights!r}: must be a map of "
            "version to weight"
        )
    if len(weights) > 1:
        raise InvalidParameterValueException(
            f"RoutingConfig.AdditionalVersionWeights = {dict(weights)!r}: "
            "at most one additional version"
        )
    checked: dict[str, float] = {}
    for version, weight in weights.items():
        if not isinstance(version, str) or not is_version(version):
            raise InvalidParameterValueException(
                f"RoutingConfig.AdditionalVersionWeights: {version!r} is not a published "
                "version number"
            )
        if (
            not isinstance(weight, int | float)
            or isinstance(weight, bool)
            or not 0.0 <= weight <= 1.0
        ):
            raise InvalidParameterValueException(
                f"RoutingConfig.AdditionalVersionWeights.{version} = {weight!r}: "
                "must be a number between 0.0 and 1.0"
            )
        if version == primary:
            raise InvalidParameterValueException(
                f"RoutingConfig.AdditionalVersionWeights: version {version} is already "
                "the alias's FunctionVersion"
            )
        checked[version] = float(weight)
    if checked and primary == LATEST:
        raise InvalidParameterValueException(
            "RoutingConfig: an alias with additional version weights must point to a "
            "published version, not $LATEST"
        )
    return checked


def pick_version(alias: Alias, draw: float) -> str:
    """The version one invocation of `alias` runs, given a uniform `draw` in [0, 1)."""
    for version, weight in alias.routing.items():
        if draw < weight:
            return version
    return alias.function_version


def unchanged(version: FunctionConfig, latest: FunctionConfig) -> bool:
    """True when publishing `latest` would snapshot nothing new since `version`."""
    return all(getattr(version, f) == getattr(latest, f) for f in SNAPSHOT_FIELDS)
