"""Lambda's version and alias routes (reference 5.2, 5.3), plus the qualified forms of
GetFunction, GetFunctionConfiguration and DeleteFunction (`?Qualifier=` or `name:qualifier`).

Mounted before the control API's own routes, so these handlers also answer the unqualified
forms of those three operations.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import unquote

from lamina.core.errors import InvalidParameterValueException
from lamina.core.models import LATEST, Account, FunctionConfig
from lamina.core.versions import Alias, is_version
from lamina.http.control_api import (
    RouteEntry,
    json_body,
    json_response,
    qualified_name,
    query_value,
)
from lamina.http.server import Request, Response
from lamina.services.functions import FunctionService
from lamina.services.versions import VersionService
from lamina.wire import lambda_api as wire

_FN = r"/2015-03-31/functions/(?P<name>[^/]+)"
MAX_ITEMS = 10_000


class VersionsApi:
    def __init__(
        self, *, versions: VersionService, functions: FunctionService, account: Account
    ) -> None:
        self._versions = versions
        self._functions = functions
        self._account = account

    def routes(self) -> list[RouteEntry]:
        alias = rf"{_FN}/aliases/(?P<alias>[^/]+)"
        return [
            ("POST", re.compile(rf"{_FN}/versions/?"), self.publish_version),
            ("GET", re.compile(rf"{_FN}/versions/?"), self.list_versions),
            ("POST", re.compile(rf"{_FN}/aliases/?"), self.create_alias),
            ("GET", re.compile(rf"{_FN}/aliases/?"), self.list_aliases),
            ("GET", re.compile(alias), self.get_alias),
            ("PUT", re.compile(alias), self.update_alias),
            ("DELETE", re.compile(alias), self.delete_alias),
            ("GET", re.compile(rf"{_FN}/?"), self.get_function),
            ("GET", re.compile(rf"{_FN}/configuration/?"), self.get_configuration),
            ("DELETE", re.compile(rf"{_FN}/?"), self.delete_function),
        ]

    # versions

    async def publish_version(self, request: Request, match: re.Match[str], rid: str) -> Response:
        body = json_body(request)
        config = self._versions.publish_version(
            _name(match),
            description=body.get("Description"),
            code_sha256=_hex_sha(body.get("CodeSha256")),
        )
        return json_response(wire.function_configuration(config, self._account), rid, 201)

    async def list_versions(self, request: Request, match: re.Match[str], rid: str) -> Response:
        configs = self._versions.list_versions(_name(match))
        items = [wire.function_configuration(c, self._account) for c in configs]
        page, marker = _page(items, request)
        return json_response(_with_marker({"Versions": page}, marker), rid)

    # aliases

    async def create_alias(self, request: Request, match: re.Match[str], rid: str) -> Response:
        body = json_body(request)
        alias = self._versions.create_alias(
            _name(match),
            body.get("Name"),
            body.get("FunctionVersion"),
            description=body.get("Description", ""),
            routing=_weights(body),
        )
        return json_response(alias_json(alias, self._account), rid, 201)

    async def list_aliases(self, request: Request, match: re.Match[str], rid: str) -> Response:
        version = query_value(request, "FunctionVersion")
        aliases = self._versions.list_aliases(_name(match), version)
        page, marker = _page([alias_json(a, self._account) for a in aliases], request)
        return json_response(_with_marker({"Aliases": page}, marker), rid)

    async def get_alias(self, request: Request, match: re.Match[str], rid: str) -> Response:
        alias = self._versions.get_alias(_name(match), unquote(match["alias"]))
        return json_response(alias_json(alias, self._account), rid)

    async def update_alias(self, request: Request, match: re.Match[str], rid: str) -> Response:
        body = json_body(request)
        changes: dict[str, Any] = {}
        if "FunctionVersion" in body:
            changes["function_version"] = body["FunctionVersion"]
        if "Description" in body:
            changes["description"] = body["Description"]
        if "RoutingConfig" in body:
            changes["routing"] = _weights(body)
        alias = self._versions.update_alias(_name(match), unquote(match["alias"]), **changes)
        return json_response(alias_json(alias, self._account), rid)

    async def delete_alias(self, request: Request, match: re.Match[str], rid: str) -> Response:
        self._versions.delete_alias(_name(match), unquote(match["alias"]))
        return Response(204, headers=[("x-amzn-RequestId", rid)])

    # qualified function operations

    async def get_function(self, request: Request, match: re.Match[str], rid: str) -> Response:
        name, qualifier = qualified_name(match, request)
        config = self._functions.get(name, qualifier)
        location = f"lamina://code/{config.code_sha256}.zip"
        body = wire.get_function(config, self._account, location)
        body["Configuration"] = self._configuration(config, qualifier)
        return json_response(body, rid)

    async def get_configuration(self, request: Request, match: re.Match[str], rid: str) -> Response:
        name, qualifier = qualified_name(match, request)
        config = self._functions.get(name, qualifier)
        return json_response(self._configuration(config, qualifier), rid)

    async def delete_function(self, request: Request, match: re.Match[str], rid: str) -> Response:
        name, qualifier = qualified_name(match, request)
        self._functions.delete(name, qualifier)
        return Response(204, headers=[("x-amzn-RequestId", rid)])

    def _configuration(self, config: FunctionConfig, qualifier: str | None) -> dict[str, Any]:
        body = wire.function_configuration(config, self._account)
        if qualifier is not None and qualifier != LATEST and not is_version(qualifier):
            # Asked through an alias: the ARN names the alias, `Version` the version.
            body["FunctionArn"] = self._account.function_arn(config.name, qualifier)
        return body


def alias_json(alias: Alias, account: Account) -> dict[str, Any]:
    body: dict[str, Any] = {
        "AliasArn": account.function_arn(alias.function_name, alias.name),
        "Name": alias.name,
        "FunctionVersion": alias.function_version,
        "Description": alias.description,
        "RevisionId": alias.revision_id,
    }
    if alias.routing:
        body["RoutingConfig"] = {"AdditionalVersionWeights": dict(alias.routing)}
    return body


def _name(match: re.Match[str]) -> str:
    name, qualifier = wire.parse_function_name(match["name"])
    if qualifier is not None:
        raise InvalidParameterValueException(
            f"FunctionName = {unquote(match['name'])!r}: this operation takes an unqualified "
            "function name"
        )
    return name


def _weights(body: dict[str, Any]) -> object:
    config = body.get("RoutingConfig")
    if config is None:
        return None
    if not isinstance(config, dict):
        raise InvalidParameterValueException(
            f"RoutingConfig = {config!r}: must be {{'AdditionalVersionWeights': {{...}}}}"
        )
    return config.get("AdditionalVersionWeights")


def _hex_sha(value: object) -> str | None:
    """PublishVersion's `CodeSha256` is base64, as GetFunction returns it."""
    if value is None or value == "":
        return None
    try:
        digest = base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 32:
        raise InvalidParameterValueException(
            f"CodeSha256 = {value!r}: must be the base64 SHA-256 that GetFunction returns"
        )
    return digest.hex()


def _page(items: list[dict[str, Any]], request: Request) -> tuple[list[dict[str, Any]], str | None]:
    """Lambda's Marker/MaxItems pagination; the marker is the index of the next item."""
    marker = query_value(request, "Marker") or "0"
    limit = query_value(request, "MaxItems") or str(MAX_ITEMS)
    if not marker.isdigit() or not limit.isdigit() or not 1 <= int(limit) <= MAX_ITEMS:
        raise InvalidParameterValueException(
            f"Marker = {marker!r}, MaxItems = {limit!r}: a Marker from a previous page and "
            f"MaxItems between 1 and {MAX_ITEMS}"
        )
    start, end = int(marker), int(marker) + int(limit)
    return items[start:end], str(end) if end < len(items) else None


def _with_marker(body: dict[str, Any], marker: str | None) -> dict[str, Any]:
    if marker is not None:
        body["NextMarker"] = marker
    return body
