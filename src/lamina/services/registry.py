"""The in-memory view of deployed functions that the invoke path reads (no database on it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lamina.core.errors import ResourceNotFoundException
from lamina.core.models import LATEST, Account, FunctionConfig


@dataclass(frozen=True, slots=True)
class DeployedFunction:
    config: FunctionConfig
    code_dir: Path  # the unpacked, read-only bundle
    opt_root: Path | None  # the merged layers, read-only

    @property
    def key(self) -> tuple[str, str, str]:
        """Environments are shared only by invocations of the same code and configuration."""
        return (self.config.name, self.config.version, self.config.revision_id)


class Registry:
    def __init__(self, account: Account) -> None:
        self._account = account
        self._functions: dict[str, DeployedFunction] = {}

    def __len__(self) -> int:
        return len(self._functions)

    def put(self, deployed: DeployedFunction) -> None:
        self._functions[deployed.config.name] = deployed

    def remove(self, name: str) -> None:
        self._functions.pop(name, None)

    def resolve(self, name: str, qualifier: str | None) -> DeployedFunction:
        deployed = self._functions.get(name)
        if deployed is None or (qualifier not in (None, LATEST)):
            # Published versions and aliases arrive with deployments; until then only
            # $LATEST exists, and anything else is missing exactly as on Lambda.
            arn = self._account.function_arn(name, qualifier)
            raise ResourceNotFoundException(f"Function not found: {arn}")
        return deployed
