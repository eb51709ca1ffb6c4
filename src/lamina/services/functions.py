"""Functions and layers: create, update, delete, publish. Validation first, then the store,
then the in-memory registry the invoke path reads; a rejected request changes nothing."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from lamina.core import validation
from lamina.core.errors import (
    InvalidParameterValueException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lamina.core.models import Account, FunctionConfig, LayerVersion
from lamina.core.ports import Store
from lamina.core.scheduling import Ledger
from lamina.services.pool import Pool
from lamina.services.registry import DeployedFunction, Registry


class CodeStore(Protocol):
    def put(self, zip_bytes: bytes) -> tuple[str, int]: ...
    def code_dir(self, sha: str) -> Path: ...
    def opt_view(self, layer_shas: Sequence[str]) -> Path | None: ...


def now_iso() -> str:
    """Lambda's `LastModified` format: `2024-05-01T12:00:00.000+0000`."""
    now = time.time()
    millis = int(now * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{millis:03d}+0000"


CONFIG_FIELDS = (
    "runtime",
    "handler",
    "memory_size",
    "timeout",
    "environment",
    "layers",
    "description",
)


class FunctionService:
    def __init__(
        self,
        *,
        store: Store,
        code: CodeStore,
        registry: Registry,
        pool: Pool,
        ledger: Ledger,
        account: Account,
    ) -> None:
        self._store = store
        self._code = code
        self._registry = registry
        self._pool = pool
        self._ledger = ledger
        self._account = account

    def load(self) -> int:
        """Bring every stored function into the registry (at start-up)."""
        functions = self._store.list_functions()
        for config in functions:
            self._activate(config)
        return len(functions)

    # functions

    def get(self, name: str) -> FunctionConfig:
        config = self._store.get_function(validation.function_name(name))
        if config is None:
            raise ResourceNotFoundException(
                f"Function not found: {self._account.function_arn(name)}"
            )
        return config

    def list_functions(self) -> list[FunctionConfig]:
        return self._store.list_functions()

    def create(self, name: str, zip_bytes: bytes, settings: Mapping[str, Any]) -> FunctionConfig:
        validation.function_name(name)
        if self._store.get_function(name) is not None:
            raise ResourceConflictException(f"Function already exist: {name}")
        if "runtime" not in settings or "handler" not in settings:
            raise InvalidParameterValueException(
                "Runtime and Handler are required for Zip functions"
            )
        fields = self._validated(settings)
        sha, size = self._code.put(zip_bytes)
        config = FunctionConfig(
            name=name,
            code_sha256=sha,
            code_size=size,
            revision_id=str(uuid.uuid4()),
            last_modified=now_iso(),
            **{"memory_size": 128, "timeout": 3, **fields},
        )
        return self._save(config)

    def update_code(self, name: str, zip_bytes: bytes) -> FunctionConfig:
        current = self.get(name)
        sha, size = self._code.put(zip_bytes)
        return self._save(
            dataclasses.replace(
                current,
                code_sha256=sha,
                code_size=size,
                revision_id=str(uuid.uuid4()),
                last_modified=now_iso(),
            )
        )

    def update_configuration(self, name: str, settings: Mapping[str, Any]) -> FunctionConfig:
        current = self.get(name)
        fields = self._validated(settings)
        return self._save(
            dataclasses.replace(
                current, revision_id=str(uuid.uuid4()), last_modified=now_iso(), **fields
            )
        )

    def delete(self, name: str) -> None:
        if not self._store.delete_function(validation.function_name(name)):
            raise ResourceNotFoundException(
                f"Function not found: {self._account.function_arn(name)}"
            )
        self._registry.remove(name)
        self._ledger.set_reservation(name, None)
        self._pool.retire_function(name)

    def put_concurrency(self, name: str, reserved: object) -> FunctionConfig:
        current = self.get(name)
        others = sum(v for k, v in self._ledger.reserved.items() if k != name)
        value = validation.reserved_concurrency(reserved, self._ledger.account_limit - others)
        config = dataclasses.replace(current, reserved_concurrency=value)
        self._store.put_function(config)
        self._activate(config)
        return config

    def delete_concurrency(self, name: str) -> None:
        current = self.get(name)
        config = dataclasses.replace(current, reserved_concurrency=None)
        self._store.put_function(config)
        self._activate(config)

    def _validated(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        checks = {
            "runtime": validation.runtime,
            "handler": validation.handler,
            "memory_size": validation.memory_size,
            "timeout": validation.timeout,
            "environment": validation.environment,
            "layers": self._layers,
            "description": _description,
        }
        unknown = set(settings) - set(checks)
        if unknown:
            raise InvalidParameterValueException(f"unknown settings: {sorted(unknown)}")
        return {key: checks[key](value) for key, value in settings.items()}

    def _layers(self, arns: object) -> tuple[str, ...]:
        checked = validation.layers(arns)
        for arn in checked:
            self._layer_by_arn(arn)
        return checked

    def _layer_by_arn(self, arn: str) -> LayerVersion:
        parts = arn.split(":")
        if len(parts) != 8 or parts[:3] != ["arn", "aws", "lambda"] or parts[5] != "layer":
            raise InvalidParameterValueException(
                f"Layers: {arn!r} is not a layer version ARN "
                "(arn:aws:lambda:<region>:<account>:layer:<name>:<version>)"
            )
        layer = None
        if parts[7].isdigit():
            layer = self._store.get_layer_version(parts[6], int(parts[7]))
        if layer is None:
            raise InvalidParameterValueException(f"Layer version {arn} does not exist.")
        return layer

    def _save(self, config: FunctionConfig) -> FunctionConfig:
        deployed = self._deployed(config)  # builds the /opt view before anything is stored
        self._store.put_function(config)
        self._registry.put(deployed)
        self._ledger.set_reservation(config.name, config.reserved_concurrency)
        self._pool.retire_function(config.name)
        return config

    def _activate(self, config: FunctionConfig) -> None:
        self._registry.put(self._deployed(config))
        self._ledger.set_reservation(config.name, config.reserved_concurrency)

    def _deployed(self, config: FunctionConfig) -> DeployedFunction:
        shas = [self._layer_by_arn(arn).code_sha256 for arn in config.layers]
        return DeployedFunction(
            config, self._code.code_dir(config.code_sha256), self._code.opt_view(shas)
        )

    # layers

    def publish_layer_version(
        self, name: str, zip_bytes: bytes, description: str, runtimes: tuple[str, ...]
    ) -> LayerVersion:
        validation.layer_name(name)
        sha, size = self._code.put(zip_bytes)
        return self._store.publish_layer_version(
            LayerVersion(
                name=name,
                version=0,
                code_sha256=sha,
                code_size=size,
                description=_description(description),
                compatible_runtimes=runtimes,
                created_date=now_iso(),
            )
        )

    def get_layer_version(self, name: str, version: int) -> LayerVersion:
        layer = self._store.get_layer_version(name, version)
        if layer is None:
            raise ResourceNotFoundException(
                f"Layer version {self._account.layer_arn(name, version)} does not exist."
            )
        return layer

    def list_layer_versions(self, name: str) -> list[LayerVersion]:
        return self._store.list_layer_versions(name)


def _description(value: object) -> str:
    if not isinstance(value, str) or len(value) > 256:
        raise InvalidParameterValueException(
            f"Description = {value!r}: must be a string of at most 256 characters"
        )
    return value
