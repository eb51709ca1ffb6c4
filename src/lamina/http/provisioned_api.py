"""Lambda's provisioned concurrency routes (reference 5.2), in the shapes boto3 reads:

PUT    /2019-09-30/functions/{name}/provisioned-concurrency?Qualifier=q   (202)
GET    /2019-09-30/functions/{name}/provisioned-concurrency?Qualifier=q
GET    /2019-09-30/functions/{name}/provisioned-concurrency?List=ALL      (Marker, MaxItems)
DELETE /2019-09-30/functions/{name}/provisioned-concurrency?Qualifier=q   (204)
"""

from __future__ import annotations

import re
from typing import Any

from lamina.core.errors import InvalidParameterValueException
from lamina.core.models import Account
from lamina.core.provisioned import ProvisionedState
from lamina.http.control_api import (
    RouteEntry,
    json_body,
    json_response,
    qualified_name,
    query_value,
)
from lamina.http.server import Request, Response
from lamina.services.provisioned import ProvisionedService

PATH = re.compile(r"/2019-09-30/functions/(?P<name>[^/]+)/provisioned-concurrency/?")
MAX_ITEMS = 50  # ListProvisionedConcurrencyConfigs' MaxItems bound


class ProvisionedApi:
    def __init__(self, *, provisioned: ProvisionedService, account: Account) -> None:
        self._provisioned = provisioned
        self._account = account

    def routes(self) -> list[RouteEntry]:
        return [
            ("PUT", PATH, self.put),
            ("GET", PATH, self.get),
            ("DELETE", PATH, self.delete),
        ]

    async def put(self, request: Request, match: re.Match[str], rid: str) -> Response:
        name, qualifier = qualified_name(match, request)
        body = json_body(request)
        state = self._provisioned.put(name, qualifier, body.get("ProvisionedConcurrentExecutions"))
        return json_response(config_json(state), rid, 202)

    async def get(self, request: Request, match: re.Match[str], rid: str) -> Response:
        name, qualifier = qualified_name(match, request)
        listing = query_value(request, "List", blank=True)  # `?List=` is an error
        if listing is not None:
            if listing != "ALL":
                raise InvalidParameterValueException(f"List = {listing!r}: must be ALL")
            return self._list(name, request, rid)
        return json_response(config_json(self._provisioned.get(name, qualifier)), rid)

    async def delete(self, request: Request, match: re.Match[str], rid: str) -> Response:
        name, qualifier = qualified_name(match, request)
        self._provisioned.delete(name, qualifier)
        return Response(204, headers=[("x-amzn-RequestId", rid)])

    def _list(self, name: str, request: Request, rid: str) -> Response:
        items = []
        for state in self._provisioned.list(name):
            config = state.config
            arn = self._account.function_arn(config.function_name, config.qualifier)
            items.append({"FunctionArn": arn, **config_json(state)})
        marker = query_value(request, "Marker") or "0"
        limit = query_value(request, "MaxItems") or str(MAX_ITEMS)
        if not marker.isdigit() or not limit.isdigit() or not 1 <= int(limit) <= MAX_ITEMS:
            raise InvalidParameterValueException(
                f"Marker = {marker!r}, MaxItems = {limit!r}: a Marker from a previous page and "
                f"MaxItems between 1 and {MAX_ITEMS}"
            )
        start, end = int(marker), int(marker) + int(limit)
        body: dict[str, Any] = {"ProvisionedConcurrencyConfigs": items[start:end]}
        if end < len(items):
            body["NextMarker"] = str(end)
        return json_response(body, rid)


def config_json(state: ProvisionedState) -> dict[str, Any]:
    body: dict[str, Any] = {
        "RequestedProvisionedConcurrentExecutions": state.config.requested,
        "AvailableProvisionedConcurrentExecutions": state.available,
        "AllocatedProvisionedConcurrentExecutions": state.allocated,
        "Status": state.status,
        "LastModified": state.config.last_modified,
    }
    if state.reason is not None:
        body["StatusReason"] = state.reason
    return body
