"""Published versions and aliases (reference 5.3): PublishVersion, ListVersionsByFunction,
Create/Get/Update/Delete/ListAliases.

Each use case is one store transaction (read, check, write); the in-memory registry the
invoke path reads is updated after it commits, so a rejected request changes nothing.
"""

from __future__ import annotations

import dataclasses
import uuid

from lamina.core import versions as rules
from lamina.core.errors import (
    InvalidParameterValueException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lamina.core.models import LATEST, Account, FunctionConfig
from lamina.core.versions import Alias
from lamina.services.functions import FunctionService, VersionStore, VersionsTx, now_iso
from lamina.services.registry import Registry

_UNSET = object()  # UpdateAlias: a member the request did not send


def publish(
    tx: VersionsTx, latest: FunctionConfig, description: str | None = None
) -> tuple[FunctionConfig, bool]:
    """Snapshot `latest` as the next version, unless nothing changed since the newest one
    (then that one is returned). The bool says whether a version was published."""
    newest = tx.latest_version(latest.name)
    if newest is not None and rules.unchanged(newest, latest):
        return newest, False
    version = dataclasses.replace(
        latest,
        version=tx.next_version(latest.name),
        revision_id=str(uuid.uuid4()),
        last_modified=now_iso(),
        description=latest.description if description is None else description,
    )
    tx.put_function(version)
    return version, True


class VersionService:
    def __init__(
        self,
        *,
        versions: VersionStore,
        functions: FunctionService,
        registry: Registry,
        account: Account,
    ) -> None:
        self._versions = versions
        self._functions = functions
        self._registry = registry
        self._account = account

    def __repr__(self) -> str:
        return f"<VersionService {self._registry!r}>"

    # versions

    def publish_version(
        self, name: str, *, description: object = None, code_sha256: object = None
    ) -> FunctionConfig:
        """PublishVersion. `code_sha256`, when given, is the hex digest $LATEST must have."""
        latest = self._functions.get(name)
        checked = None if description is None else _description(description)
        if code_sha256 is not None and code_sha256 != latest.code_sha256:
            raise InvalidParameterValueException(
                f"CodeSha256 = {code_sha256!r} does not match the code of $LATEST "
                f"({latest.code_sha256})"
            )
        with self._versions.transaction() as tx:
            # Read again inside the transaction: the check and the write must see one state.
            current = tx.get_function(name)
            if current is None:
                raise ResourceNotFoundException(
                    f"Function not found: {self._account.function_arn(name)}"
                )
            version, published = publish(tx, current, checked)
        if published:
            self._registry.put(self._functions.deployed(version))
        return version

    def list_versions(self, name: str) -> list[FunctionConfig]:
        """`$LATEST` first, then the published versions in order."""
        latest = self._functions.get(name)
        with self._versions.transaction(write=False) as tx:
            return [latest, *tx.list_versions(name)]

    # aliases

    def create_alias(
        self,
        name: str,
        alias_name: object,
        function_version: object,
        *,
        description: object = "",
        routing: object = None,
    ) -> Alias:
        self._functions.get(name)
        alias_name = rules.alias_name(alias_name)
        version = _version(function_version)
        weights = rules.routing(routing, version)
        with self._versions.transaction() as tx:
            if tx.get_alias(name, alias_name) is not None:
                raise ResourceConflictException(
                    f"Alias already exists: {self._account.function_arn(name, alias_name)}"
                )
            self._check_versions_exist(tx, name, [version, *weights])
            alias = Alias(
                function_name=name,
                name=alias_name,
                function_version=version,
                description=_description(description),
                routing=weights,
                revision_id=str(uuid.uuid4()),
            )
            tx.put_alias(alias)
        self._registry.put_alias(alias)
        return alias

    def get_alias(self, name: str, alias_name: str) -> Alias:
        with self._versions.transaction(write=False) as tx:
            alias = tx.get_alias(name, alias_name)
        if alias is None:
            raise self._alias_not_found(name, alias_name)
        return alias

    def update_alias(
        self,
        name: str,
        alias_name: str,
        *,
        function_version: object = _UNSET,
        description: object = _UNSET,
        routing: object = _UNSET,
    ) -> Alias:
        with self._versions.transaction() as tx:
            current = tx.get_alias(name, alias_name)
            if current is None:
                raise self._alias_not_found(name, alias_name)
            version = (
                current.function_version
                if function_version is _UNSET
                else _version(function_version)
            )
            weights = rules.routing(current.routing if routing is _UNSET else routing, version)
            self._check_versions_exist(tx, name, [version, *weights])
            alias = dataclasses.replace(
                current,
                function_version=version,
                description=current.description
                if description is _UNSET
                else _description(description),
                routing=weights,
                revision_id=str(uuid.uuid4()),
            )
            tx.put_alias(alias)
        self._registry.put_alias(alias)
        return alias

    def delete_alias(self, name: str, alias_name: str) -> None:
        """Deleting an alias that does not exist succeeds, as on Lambda."""
        self._functions.get(name)
        with self._versions.transaction() as tx:
            tx.delete_alias(name, alias_name)
        self._registry.remove_alias(name, alias_name)

    def list_aliases(self, name: str, function_version: str | None = None) -> list[Alias]:
        self._functions.get(name)
        with self._versions.transaction(write=False) as tx:
            aliases = tx.list_aliases(name)
        if function_version is not None:
            aliases = [
                a
                for a in aliases
                if a.function_version == function_version or function_version in a.routing
            ]
        return aliases

    def _check_versions_exist(self, tx: VersionsTx, name: str, versions: list[str]) -> None:
        for version in versions:
            if version != LATEST and tx.get_function(name, version) is None:
                raise ResourceNotFoundException(
                    f"Function not found: {self._account.function_arn(name, version)}"
                )

    def _alias_not_found(self, name: str, alias_name: str) -> ResourceNotFoundException:
        arn = self._account.function_arn(name, alias_name)
        return ResourceNotFoundException(f"Alias not found: {arn}")


def _version(value: object) -> str:
    if not isinstance(value, str) or not (value == LATEST or rules.is_version(value)):
        raise InvalidParameterValueException(
            f"FunctionVersion = {value!r}: must be $LATEST or a published version number"
        )
    return value


def _description(value: object) -> str:
    if not isinstance(value, str) or len(value) > 256:
        raise InvalidParameterValueException(
            f"Description = {value!r}: must be a string of at most 256 characters"
        )
    return value
