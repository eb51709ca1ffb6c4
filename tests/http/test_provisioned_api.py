"""The provisioned concurrency routes, in-process through the real ControlApi (routing,
JSON, error rendering) on the real services, in the shapes boto3 reads."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.http.test_lamina_api import data, error_type
from tests.services.test_async_fakes import async_invoker
from tests.services.test_deploy_fakes import bundle
from tests.services.test_provisioned_fakes import SETTINGS, Provisioned, provisioned_platform

from lamina.http.control_api import ControlApi
from lamina.http.provisioned_api import ProvisionedApi
from lamina.http.server import Request, Response
from lamina.http.versions_api import VersionsApi

PC = "/2019-09-30/functions/fn/provisioned-concurrency"
ARN = "arn:aws:lambda:us-east-1:000000000000:function:fn"


class Client:
    def __init__(self, x: Provisioned) -> None:
        p = x.p
        self.x = x
        self.api = ControlApi(
            functions=p.functions,
            invoke=p.h.invoker,
            events=async_invoker(p.store, p.h),
            pool=p.h.pool,
            store=p.store,
            account=p.h.account,
            routers=[
                VersionsApi(versions=p.versions, functions=p.functions, account=p.h.account),
                ProvisionedApi(provisioned=x.service, account=p.h.account),
            ],
        )

    async def __call__(self, method: str, path: str, body: Any = None, query: str = "") -> Response:
        raw = b"" if body is None else json.dumps(body).encode()
        return await self.api(Request(method, path, query, {}, raw))


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    async with provisioned_platform(tmp_path) as x:
        x.p.functions.create("fn", bundle(1), {**SETTINGS, "memory_size": 128})
        x.p.versions.publish_version("fn")
        x.p.versions.create_alias("fn", "live", "1")
        yield Client(x)


async def test_put_then_get_until_ready(client: Client) -> None:
    put = await client("PUT", PC, {"ProvisionedConcurrentExecutions": 2}, "Qualifier=live")
    await client.x.service.wait_settled()
    got = await client("GET", PC, query="Qualifier=live")

    assert put.status == 202
    body = data(put)
    assert body == {
        "RequestedProvisionedConcurrentExecutions": 2,
        "AvailableProvisionedConcurrentExecutions": 0,
        "AllocatedProvisionedConcurrentExecutions": 0,
        "Status": "IN_PROGRESS",
        "LastModified": body["LastModified"],
    }
    assert got.status == 200
    assert data(got) == {
        **body,
        "AvailableProvisionedConcurrentExecutions": 2,
        "AllocatedProvisionedConcurrentExecutions": 2,
        "Status": "READY",
    }


async def test_the_qualifier_may_come_in_the_function_name(client: Client) -> None:
    put = await client(
        "PUT",
        f"/2019-09-30/functions/{ARN}:1/provisioned-concurrency",
        {"ProvisionedConcurrentExecutions": 1},
    )
    clash = await client(
        "GET", "/2019-09-30/functions/fn:1/provisioned-concurrency", query="Qualifier=live"
    )

    assert put.status == 202
    assert (clash.status, error_type(clash)) == (400, "InvalidParameterValueException")


async def test_list_all_names_each_configuration_and_pages(client: Client) -> None:
    client.x.p.functions.update_code("fn", bundle(2))
    client.x.p.versions.publish_version("fn")
    await client("PUT", PC, {"ProvisionedConcurrentExecutions": 1}, "Qualifier=live")
    await client("PUT", PC, {"ProvisionedConcurrentExecutions": 1}, "Qualifier=2")
    await client.x.service.wait_settled()

    listed = await client("GET", PC, query="List=ALL")
    first = await client("GET", PC, query="List=ALL&MaxItems=1")
    rest = await client("GET", PC, query=f"List=ALL&Marker={data(first)['NextMarker']}")
    bad = await client("GET", PC, query="List=ALL&MaxItems=51")

    items = data(listed)["ProvisionedConcurrencyConfigs"]
    assert [(i["FunctionArn"], i["Status"]) for i in items] == [
        (f"{ARN}:2", "READY"),
        (f"{ARN}:live", "READY"),
    ]
    assert "NextMarker" not in data(listed)
    assert [i["FunctionArn"] for i in data(first)["ProvisionedConcurrencyConfigs"]] == [f"{ARN}:2"]
    assert [i["FunctionArn"] for i in data(rest)["ProvisionedConcurrencyConfigs"]] == [
        f"{ARN}:live"
    ]
    assert (bad.status, error_type(bad)) == (400, "InvalidParameterValueException")


async def test_delete_answers_204_and_then_get_is_not_found(client: Client) -> None:
    await client("PUT", PC, {"ProvisionedConcurrentExecutions": 1}, "Qualifier=1")
    deleted = await client("DELETE", PC, query="Qualifier=1")
    again = await client("DELETE", PC, query="Qualifier=1")
    missing = await client("GET", PC, query="Qualifier=1")

    assert (deleted.status, deleted.body, again.status) == (204, b"", 204)
    assert (missing.status, error_type(missing)) == (
        404,
        "ProvisionedConcurrencyConfigNotFoundException",
    )
    assert data(missing)["Message"].startswith("No Provisioned Concurrency Config found")


@pytest.mark.parametrize(
    ("method", "query", "body", "status", "code", "message"),
    [
        (
            "PUT",
            "Qualifier=$LATEST",
            {"ProvisionedConcurrentExecutions": 1},
            400,
            "InvalidParameterValueException",
            "cannot be applied to unpublished",
        ),
        (
            "PUT",
            "",
            {"ProvisionedConcurrentExecutions": 1},
            400,
            "InvalidParameterValueException",
            "cannot be applied to unpublished",
        ),
        (
            "PUT",
            "Qualifier=1",
            {"ProvisionedConcurrentExecutions": 0},
            400,
            "InvalidParameterValueException",
            "ProvisionedConcurrentExecutions = 0",
        ),
        (
            "PUT",
            "Qualifier=1",
            {},
            400,
            "InvalidParameterValueException",
            "ProvisionedConcurrentExecutions = None",
        ),
        (
            "PUT",
            "Qualifier=9",
            {"ProvisionedConcurrentExecutions": 1},
            404,
            "ResourceNotFoundException",
            "Function not found",
        ),
        (
            "PUT",
            "Qualifier=gone",
            {"ProvisionedConcurrentExecutions": 1},
            404,
            "ResourceNotFoundException",
            "Cannot find alias arn",
        ),
        (
            "GET",
            "Qualifier=$LATEST",
            None,
            400,
            "InvalidParameterValueException",
            "must be an alias or a published version",
        ),
        ("GET", "", None, 400, "InvalidParameterValueException", "Qualifier is required"),
        ("GET", "List=SOME", None, 400, "InvalidParameterValueException", "must be ALL"),
        (
            "DELETE",
            "Qualifier=$LATEST",
            None,
            400,
            "InvalidParameterValueException",
            "must be an alias or a published version",
        ),
    ],
)
async def test_errors_in_lambda_s_shapes(
    client: Client,
    method: str,
    query: str,
    body: Any,
    status: int,
    code: str,
    message: str,
) -> None:
    response = await client(method, PC, body, query)

    assert (response.status, error_type(response)) == (status, code)
    assert message in data(response)["Message"]


async def test_the_reservation_limit_is_a_400(client: Client) -> None:
    await client("PUT", "/2017-10-31/functions/fn/concurrency", {"ReservedConcurrentExecutions": 1})
    response = await client("PUT", PC, {"ProvisionedConcurrentExecutions": 2}, "Qualifier=1")

    assert (response.status, error_type(response)) == (400, "InvalidParameterValueException")
    assert "reservedConcurrentExecution" in data(response)["Message"]


async def test_account_settings_show_the_carved_out_share(client: Client) -> None:
    await client("PUT", PC, {"ProvisionedConcurrentExecutions": 3}, "Qualifier=1")
    settings = data(await client("GET", "/2016-08-19/account-settings"))

    assert settings["AccountLimit"]["UnreservedConcurrentExecutions"] == 1000 - 3
