"""The in-memory view of deployed functions that the invoke path reads (no database on it).

It holds every function's `$LATEST`, its published versions and its aliases, so that a
qualifier (`$LATEST`, a version number, an alias) resolves with a few dict lookups. A
weighted alias draws a version per invocation from `random` (injectable for tests).
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lamina.core.errors import ResourceNotFoundException
from lamina.core.models import LATEST, Account, FunctionConfig
from lamina.core.versions import Alias, pick_version


@dataclass(frozen=True, slots=True)
class DeployedFunction:
    config: FunctionConfig
    code_dir: Path  # the unpacked, read-only bundle
    opt_root: Path | None  # the merged layers, read-only

    @property
    def key(self) -> tuple[str, str, str]:
        """Environments are shared only by invocations of the same code and configuration."""
        return (self.config.name, self.config.version, self.config.revision_id)


@dataclass(slots=True)
class _Entry:
    """One function: `$LATEST`, its published versions and its aliases."""

    latest: DeployedFunction
    versions: dict[str, DeployedFunction] = field(default_factory=dict)
    aliases: dict[str, Alias] = field(default_factory=dict)


class Registry:
    def __init__(self, account: Account, random: Callable[[], float] = _random.random) -> None:
        self._account = account
        self._random = random
        self._functions: dict[str, _Entry] = {}

    def __repr__(self) -> str:
        versions = sum(len(e.versions) for e in self._functions.values())
        aliases = sum(len(e.aliases) for e in self._functions.values())
        return f"<Registry functions={len(self)} versions={versions} aliases={aliases}>"

    def __len__(self) -> int:
        return len(self._functions)

    def put(self, deployed: DeployedFunction) -> None:
        """Add or replace `$LATEST` or a published version (which must follow its function)."""
        config = deployed.config
        entry = self._functions.get(config.name)
        if config.version == LATEST:
            if entry is None:
                self._functions[config.name] = _Entry(deployed)
            else:
                entry.latest = deployed
        elif entry is None:
            raise KeyError(f"version {config.version} of unknown function {config.name}")
        else:
            entry.versions[config.version] = deployed

    def remove(self, name: str) -> None:
        """The function, its versions and aliases."""
        self._functions.pop(name, None)

    def remove_version(self, name: str, version: str) -> None:
        entry = self._functions.get(name)
        if entry is not None:
            entry.versions.pop(version, None)

    def put_alias(self, alias: Alias) -> None:
        self._functions[alias.function_name].aliases[alias.name] = alias

    def remove_alias(self, function_name: str, name: str) -> None:
        entry = self._functions.get(function_name)
        if entry is not None:
            entry.aliases.pop(name, None)

    def alias(self, function_name: str, name: str) -> Alias | None:
        entry = self._functions.get(function_name)
        return entry.aliases.get(name) if entry is not None else None

    def version(self, function_name: str, version: str) -> DeployedFunction | None:
        """A published version (not `$LATEST`, not an alias), or None."""
        entry = self._functions.get(function_name)
        return entry.versions.get(version) if entry is not None else None

    def resolve(self, name: str, qualifier: str | None) -> DeployedFunction:
        """The `$LATEST`, version or (for an alias) version drawn that an invocation runs."""
        entry = self._functions.get(name)
        if entry is not None:
            if qualifier is None or qualifier == LATEST:
                return entry.latest
            deployed = entry.versions.get(qualifier)
            if deployed is not None:
                return deployed
            alias = entry.aliases.get(qualifier)
            if alias is not None:
                version = pick_version(alias, self._random() if alias.routing else 0.0)
                if version == LATEST:
                    return entry.latest
                deployed = entry.versions.get(version)
                if deployed is not None:
                    return deployed
        arn = self._account.function_arn(name, qualifier)
        raise ResourceNotFoundException(f"Function not found: {arn}")
