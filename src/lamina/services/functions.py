"""Functions and layers: create, update, delete, publish. Validation first, then the store,
then the in-memory registry the invoke path reads; a rejected request changes nothing."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from lamina.core import validation
from lamina.core.errors import (
    InvalidParameterValueException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lamina.core.models import LATEST, Account, FunctionConfig, LayerVersion
from lamina.core.ports import Store
from lamina.core.runtimes import builtin_layer_name
from lamina.core.scheduling import Ledger
from lamina.core.versions import Alias, is_version
from lamina.services.environment import EnvState
from lamina.services.pool import Pool
from lamina.services.registry import DeployedFunction, Registry


class CodeStore(Protocol):
    def put(self, zip_bytes: bytes) -> tuple[str, int]: ...
    def code_dir(self, sha: str) -> Path: ...
    def opt_view(self, layer_shas: Sequence[str]) -> Path | None: ...


class VersionsTx(Protocol):
    """Published versions, aliases and layers inside one store transaction
    (`lamina.store.versions.VersionsTransaction`)."""

    def get_function(self, name: str, version: str = LATEST) -> FunctionConfig | None: ...
    def put_function(self, config: FunctionConfig) -> None: ...
    def list_versions(self, name: str | None = None) -> list[FunctionConfig]: ...
    def latest_version(self, name: str) -> FunctionConfig | None: ...
    def next_version(self, name: str) -> str: ...
    def delete_function(self, name: str) -> bool: ...
    def delete_version(self, name: str, version: str) -> bool: ...
    def get_alias(self, function_name: str, name: str) -> Alias | None: ...
    def put_alias(self, alias: Alias) -> None: ...
    def delete_alias(self, function_name: str, name: str) -> bool: ...
    def list_aliases(self, function_name: str | None = None) -> list[Alias]: ...
    def get_layer_version(self, name: str, version: int) -> LayerVersion | None: ...
    def latest_layer_version(self, name: str) -> LayerVersion | None: ...
    def publish_layer_version(self, layer: LayerVersion) -> LayerVersion: ...


class VersionStore(Protocol):
    def transaction(self, *, write: bool = True) -> AbstractContextManager[VersionsTx]: ...


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
        versions: VersionStore,
        code: CodeStore,
        registry: Registry,
        pool: Pool,
        ledger: Ledger,
        account: Account,
    ) -> None:
        self._store = store
        self._versions = versions
        self._code = code
        self._registry = registry
        self._pool = pool
        self._ledger = ledger
        self._account = account

    def load(self) -> int:
        """Bring every stored function, version and alias into the registry (at start-up)."""
        functions = self._store.list_functions()
        for config in functions:
            self._activate(config)
        with self._versions.transaction(write=False) as tx:
            versions = tx.list_versions()
            aliases = tx.list_aliases()
        for config in versions:
            self._registry.put(self.deployed(config))
        for alias in aliases:
            self._registry.put_alias(alias)
        return len(functions)

    # functions

    def get(self, name: str, qualifier: str | None = None) -> FunctionConfig:
        """`$LATEST`, a published version, or the version an alias points to."""
        validation.function_name(name)
        if qualifier in (None, LATEST):
            config = self._store.get_function(name)
        else:
            with self._versions.transaction(write=False) as tx:
                alias = None if is_version(qualifier) else tx.get_alias(name, qualifier)
                version = alias.function_version if alias else qualifier
                config = tx.get_function(name, version)
        if config is None:
            raise ResourceNotFoundException(
                f"Function not found: {self._account.function_arn(name, qualifier)}"
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

    def delete(self, name: str, qualifier: str | None = None) -> None:
        """The function with every version and alias; or, with a version number as
        `qualifier`, that version alone (refused while an alias points to it)."""
        validation.function_name(name)
        if qualifier is not None:
            self._delete_version(name, qualifier)
            return
        with self._versions.transaction() as tx:
            deleted = tx.delete_function(name)
        if not deleted:
            raise ResourceNotFoundException(
                f"Function not found: {self._account.function_arn(name)}"
            )
        self._registry.remove(name)
        self._ledger.set_reservation(name, None)
        self._pool.retire_function(name)

    def _delete_version(self, name: str, version: str) -> None:
        if version == LATEST:
            raise InvalidParameterValueException(
                "$LATEST version cannot be deleted without deleting the function."
            )
        if not is_version(version):
            raise InvalidParameterValueException(
                f"Qualifier = {version!r}: DeleteFunction takes a version number; "
                "delete an alias with DeleteAlias"
            )
        with self._versions.transaction() as tx:
            if tx.get_function(name, version) is None:
                raise ResourceNotFoundException(
                    f"Function not found: {self._account.function_arn(name, version)}"
                )
            users = [
                a.name
                for a in tx.list_aliases(name)
                if a.function_version == version or version in a.routing
            ]
            if users:
                raise ResourceConflictException(
                    f"Unable to delete version {version} of {name} because the following "
                    f"aliases reference it: {users}"
                )
            tx.delete_version(name, version)
        self._registry.remove_version(name, version)
        # Only idle ones: a busy environment finishes its invocation, then ages out.
        for env in self._pool.environments(name):
            if env.function.version == version and env.state is EnvState.IDLE:
                self._pool.retire(env)

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
            if builtin_layer_name(arn) is None:
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
        deployed = self.deployed(config)  # builds the /opt view before anything is stored
        self._store.put_function(config)
        self._registry.put(deployed)
        self._ledger.set_reservation(config.name, config.reserved_concurrency)
        self._pool.retire_function(config.name)
        return config

    def _activate(self, config: FunctionConfig) -> None:
        self._registry.put(self.deployed(config))
        self._ledger.set_reservation(config.name, config.reserved_concurrency)

    def deployed(self, config: FunctionConfig) -> DeployedFunction:
        """What the registry holds for `config`; builds its /opt view if it is new."""
        # Bref's layers are Lamina's built-in runtimes: they select one and add no files.
        shas = [
            self._layer_by_arn(arn).code_sha256
            for arn in config.layers
            if builtin_layer_name(arn) is None
        ]
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
