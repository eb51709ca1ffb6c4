"""Provisioned concurrency (reference 6): the configurations and their rules, as pure data.

A configuration asks for `requested` execution environments of one published version of a
function, named by the version number or by an alias (never `$LATEST`), to be started and
initialised ahead of time. Its status is IN_PROGRESS until that many are initialised
(READY); FAILED says that the last attempt to start one failed, and why.

The limits are Lambda's: the provisioned concurrency of all of a function's versions and
aliases together may not exceed the function's reserved concurrency; a function without a
reservation takes it out of the account's unreserved pool, which keeps at least 100. A
version may be provisioned directly or through aliases that point at it, not both.

The messages are Lambda's own, followed by the values that broke the rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from lamina.core.errors import InvalidParameterValueException, ResourceConflictException
from lamina.core.models import LATEST
from lamina.core.versions import Alias, is_version

Status = Literal["IN_PROGRESS", "READY", "FAILED"]

MIN_UNRESERVED = 100  # what reservations and provisioned concurrency leave to the rest
# The alias the Serverless Framework (v3) gives `provisionedConcurrency: N` of a function: it
# points at the version the deployment published, and the function's events go to it.
DEPLOY_ALIAS = "provisioned"
UNPUBLISHED = "Provisioned Concurrency Configs cannot be applied to unpublished function versions."


@dataclass(frozen=True, slots=True)
class ProvisionedConfig:
    function_name: str
    qualifier: str  # a published version number or an alias name
    requested: int  # RequestedProvisionedConcurrentExecutions
    last_modified: str  # ISO 8601, as Lambda returns it


@dataclass(frozen=True, slots=True)
class ProvisionedState:
    """A configuration with what the node has done about it."""

    config: ProvisionedConfig
    allocated: int  # environments initialised for it
    status: Status
    reason: str | None = None  # StatusReason, when FAILED

    @property
    def available(self) -> int:
        return self.allocated


def status(requested: int, allocated: int, failure: str | None) -> tuple[Status, str | None]:
    if allocated >= requested:
        return "READY", None
    if failure is not None:
        return "FAILED", failure
    return "IN_PROGRESS", None


def qualifier(value: str | None) -> str:
    """The qualifier of Get/Delete: a published version or an alias, never $LATEST."""
    if value is None or value == "":
        raise InvalidParameterValueException(
            "Qualifier is required: a published version number or an alias name"
        )
    if value == LATEST:
        raise InvalidParameterValueException(
            "The function resource provided must be an alias or a published version. "
            "Qualifier = '$LATEST'"
        )
    return value


def unpublished(value: str | None) -> InvalidParameterValueException:
    """PutProvisionedConcurrencyConfig on `$LATEST` (or with no qualifier)."""
    return InvalidParameterValueException(
        f"{UNPUBLISHED} Qualifier = {value!r}: must be a published version number or an alias"
    )


def requested(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidParameterValueException(
            f"ProvisionedConcurrentExecutions = {value!r}: must be an integer of at least 1"
        )
    return value


def check_target(
    name: str,
    target: str,
    aliases: Sequence[Alias],
    configs: Mapping[str, int],
) -> None:
    """A version may be provisioned directly or through aliases, not both. `target` is the
    configuration's qualifier; `configs` the function's other configurations by qualifier."""
    if is_version(target):
        through = sorted(
            a.name for a in aliases if a.function_version == target and a.name in configs
        )
        if through:
            raise ResourceConflictException(
                f"Version is pointed by a Provisioned Concurrency alias: version {target} of "
                f"{name} is provisioned through alias {', '.join(through)}"
            )
        return
    alias = next((a for a in aliases if a.name == target), None)
    if alias is None:
        return  # the caller reports the missing alias
    if alias.function_version == LATEST:
        raise InvalidParameterValueException(
            f"{UNPUBLISHED} Alias {target} of {name} points to $LATEST"
        )
    if alias.function_version in configs:
        raise ResourceConflictException(
            "Alias can't be used for Provisioned Concurrency configuration on an already "
            f"Provisioned version: alias {target} of {name} points to version "
            f"{alias.function_version}, which has its own configuration"
        )


def check_limits(
    name: str,
    total: int,
    before: int,
    reserved: int | None,
    unreserved_without: int,
) -> None:
    """`total`: the function's provisioned concurrency (all qualifiers) once the change is
    made, `before` what it is now; `unreserved_without`: the account's unreserved pool as it
    would be without this function's provisioned share (reservations of every function and
    the shares of the others taken out)."""
    if reserved is not None:
        if total > reserved:
            raise InvalidParameterValueException(
                "Requested Provisioned Concurrency should not be greater than the "
                f"reservedConcurrentExecution for function: {name} would have {total} "
                "provisioned across its versions and aliases, and its reserved concurrency "
                f"is {reserved}"
            )
        return
    left = unreserved_without - total
    if total > before and left < MIN_UNRESERVED:
        raise InvalidParameterValueException(
            "Specified ConcurrentExecutions for function decreases account's "
            f"UnreservedConcurrentExecution below its minimum value of [{MIN_UNRESERVED}]: "
            f"{total} provisioned for {name} would leave {left}"
        )
