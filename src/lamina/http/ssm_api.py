"""The SSM Parameter Store API (AWS JSON 1.1 protocol) on the control port, for boto3, the
aws CLI, AsyncAws (Bref's secrets loader) and `lamina params`.

Every operation is `POST /` with `X-Amz-Target: AmazonSSM.<Operation>` and a JSON body of
PascalCase members; answers are JSON in `application/x-amz-json-1.1` with timestamps as
epoch seconds, and errors `{"__type": code, "message": text}` (`http.errors`). Operations
run on a worker thread: they touch SQLite and the key file, which must not stall the loop.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any, TypeVar, cast

import orjson

from lamina.core.errors import LaminaError
from lamina.core.models import Account
from lamina.core.params import (
    InvalidFilterKey,
    Parameter,
    ParameterFilter,
    ParameterVersion,
    PutParameterRequest,
    SerializationException,
    UnknownOperationException,
    ValidationException,
    parameter_arn,
)
from lamina.http import errors
from lamina.http.control_api import RouteEntry
from lamina.http.server import Request, Response
from lamina.services.params import ParameterService

TARGET_PREFIX = "AmazonSSM."

Json = dict[str, Any]
Item = TypeVar("Item")
Operation = Callable[["Body"], Json]


class SsmApi:
    """A control API `Router` for `POST /` requests targeted at `AmazonSSM`."""

    def __init__(self, params: ParameterService, account: Account) -> None:
        self.params = params
        self.account = account
        self.operations: dict[str, Operation] = {
            "PutParameter": self.put_parameter,
            "GetParameter": self.get_parameter,
            "GetParameters": self.get_parameters,
            "GetParametersByPath": self.get_parameters_by_path,
            "DeleteParameter": self.delete_parameter,
            "DeleteParameters": self.delete_parameters,
            "DescribeParameters": self.describe_parameters,
            "GetParameterHistory": self.get_parameter_history,
            "LabelParameterVersion": self.label_parameter_version,
        }

    def __repr__(self) -> str:
        return f"<SsmApi {len(self.operations)} operations>"

    def routes(self) -> list[RouteEntry]:
        return [("POST", re.compile(r"/"), self.handle)]

    async def handle(self, request: Request, match: re.Match[str], request_id: str) -> Response:
        try:
            target = request.header("x-amz-target")
            operation = self.operations.get(target.removeprefix(TARGET_PREFIX))
            if operation is None or not target.startswith(TARGET_PREFIX):
                raise UnknownOperationException(
                    f"X-Amz-Target = {target!r}: not an SSM operation Lamina implements "
                    f"({', '.join(self.operations)})"
                )
            body = Body.parse(request.body)
            result = await asyncio.to_thread(operation, body)
        except LaminaError as exc:
            return errors.render_json_protocol(exc, request_id)
        except Exception as exc:
            return errors.render_json_protocol_unexpected(exc, request_id)
        return Response(
            200,
            orjson.dumps(result),
            [("x-amzn-RequestId", request_id)],
            content_type=errors.JSON_1_1,
        )

    # operations: wire shape in, service call, wire shape out

    def put_parameter(self, body: Body) -> Json:
        tags = body.array("Tags", dict)
        version = self.params.put(
            PutParameterRequest(
                name=body.required_text("Name"),
                value=body.required_text("Value"),
                type=body.text("Type"),
                overwrite=body.flag("Overwrite"),
                description=body.text("Description"),
                key_id=body.text("KeyId"),
                allowed_pattern=body.text("AllowedPattern"),
                tier=body.text("Tier"),
                data_type=body.text("DataType"),
                tags=tuple((str(t.get("Key")), str(t.get("Value"))) for t in tags),
                policies=body.text("Policies"),
            )
        )
        return {"Version": version.version, "Tier": version.tier}

    def get_parameter(self, body: Body) -> Json:
        parameter = self.params.get(
            body.required_text("Name"), with_decryption=body.flag("WithDecryption")
        )
        return {"Parameter": self._parameter(parameter)}

    def get_parameters(self, body: Body) -> Json:
        found, invalid = self.params.get_many(
            body.array("Names", str, required=True), with_decryption=body.flag("WithDecryption")
        )
        return {"Parameters": [self._parameter(p) for p in found], "InvalidParameters": invalid}

    def get_parameters_by_path(self, body: Body) -> Json:
        page = self.params.get_by_path(
            body.required_text("Path"),
            recursive=body.flag("Recursive"),
            filters=body.filters("ParameterFilters"),
            with_decryption=body.flag("WithDecryption"),
            max_items=body.number("MaxResults"),
            next_token=body.text("NextToken"),
        )
        return _page([self._parameter(p) for p in page.items], page.next_token)

    def delete_parameter(self, body: Body) -> Json:
        self.params.delete(body.required_text("Name"))
        return {}

    def delete_parameters(self, body: Body) -> Json:
        deleted, invalid = self.params.delete_many(body.array("Names", str, required=True))
        return {"DeletedParameters": deleted, "InvalidParameters": invalid}

    def describe_parameters(self, body: Body) -> Json:
        legacy = body.array("Filters", dict)
        filters = body.filters("ParameterFilters")
        if legacy and filters:
            raise ValidationException(
                "Filters and ParameterFilters cannot be used together: use ParameterFilters"
            )
        page = self.params.describe(
            filters or _legacy_filters(legacy),
            max_items=body.number("MaxResults"),
            next_token=body.text("NextToken"),
        )
        return _page([self._metadata(v) for v in page.items], page.next_token)

    def get_parameter_history(self, body: Body) -> Json:
        page = self.params.history(
            body.required_text("Name"),
            with_decryption=body.flag("WithDecryption"),
            max_items=body.number("MaxResults"),
            next_token=body.text("NextToken"),
        )
        return _page([self._history(p) for p in page.items], page.next_token)

    def label_parameter_version(self, body: Body) -> Json:
        version, invalid = self.params.label(
            body.required_text("Name"),
            body.array("Labels", str, required=True),
            body.number("ParameterVersion"),
        )
        return {"InvalidLabels": invalid, "ParameterVersion": version}

    # wire shapes out

    def _parameter(self, p: Parameter) -> Json:
        shape: Json = {
            "Name": p.name,
            "Type": p.type,
            "Value": p.value,
            "Version": p.version,
            "LastModifiedDate": p.last_modified,
            "ARN": parameter_arn(self.account, p.name),
            "DataType": p.data_type,
        }
        if p.selector is not None:
            shape["Selector"] = p.selector
        return shape

    def _metadata(self, v: ParameterVersion) -> Json:
        shape: Json = {
            "Name": v.name,
            "ARN": parameter_arn(self.account, v.name),
            "Type": v.type,
            "LastModifiedDate": v.last_modified,
            "Version": v.version,
            "Tier": v.tier,
            "Policies": [],
            "DataType": v.data_type,
        }
        return shape | _optional(v.description, v.key_id, v.allowed_pattern)

    def _history(self, p: Parameter) -> Json:
        shape: Json = {
            "Name": p.name,
            "Type": p.type,
            "LastModifiedDate": p.last_modified,
            "Value": p.value,
            "Version": p.version,
            "Labels": list(p.labels),
            "Tier": p.tier,
            "Policies": [],
            "DataType": p.data_type,
        }
        return shape | _optional(p.description, p.key_id, p.allowed_pattern)


class Body:
    """A request's members, read with the checks botocore would have made client-side: a
    missing required member is a ValidationException, a wrong JSON type a
    SerializationException (AWS's answers to clients that skip those checks)."""

    def __init__(self, members: Json) -> None:
        self.members = members

    @classmethod
    def parse(cls, raw: bytes) -> Body:
        try:
            members = orjson.loads(raw or b"{}")
        except orjson.JSONDecodeError as exc:
            raise SerializationException(f"The request body is not JSON: {exc}") from None
        if not isinstance(members, dict):
            raise SerializationException("The request body must be a JSON object")
        return cls(members)

    def text(self, key: str) -> str | None:
        return cast("str | None", self._get(key, str, "a string"))

    def required_text(self, key: str) -> str:
        return cast(str, self._required(key, self._get(key, str, "a string")))

    def flag(self, key: str) -> bool:
        return bool(self._get(key, bool, "true or false"))

    def number(self, key: str) -> int | None:
        value = self._get(key, int, "an integer")
        if isinstance(value, bool):
            raise SerializationException(f"{key}: must be an integer, not a boolean")
        return cast("int | None", value)

    def array(self, key: str, item: type[Item], *, required: bool = False) -> list[Item]:
        values = cast("list[object] | None", self._get(key, list, "a list"))
        if required:
            self._required(key, values)
        if not all(isinstance(v, item) for v in values or ()):
            raise SerializationException(f"{key}: every item must be {item.__name__}")
        return cast(list[Item], values or [])

    def filters(self, key: str) -> list[ParameterFilter]:
        return [
            ParameterFilter(
                key=_member(f, "Key", str, key) or "",
                values=tuple(_member(f, "Values", list, key) or ()),
                option=_member(f, "Option", str, key) or "",
            )
            for f in self.array(key, dict)
        ]

    def _get(self, key: str, kind: type, expected: str) -> object:
        value = self.members.get(key)
        if value is not None and not isinstance(value, kind):
            raise SerializationException(f"{key}: must be {expected}, not {_json_type(value)}")
        return value

    @staticmethod
    def _required(key: str, value: object) -> object:
        if value is None:
            raise ValidationException(
                f"1 validation error detected: Value null at '{key[:1].lower()}{key[1:]}' "
                "failed to satisfy constraint: Member must not be null"
            )
        return value


def _member(shape: Json, key: str, kind: type, where: str) -> Any:
    value = shape.get(key)
    if value is not None and not isinstance(value, kind):
        raise SerializationException(
            f"{where}.{key}: must be {kind.__name__}, not {_json_type(value)}"
        )
    if isinstance(value, list) and not all(isinstance(v, str) for v in value):
        raise SerializationException(f"{where}.{key}: every value must be a string")
    return value


def _json_type(value: object) -> str:
    # Names the JSON type only: the value itself may be a secret.
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    return names.get(type(value), "a list" if isinstance(value, list) else "an object")


def _legacy_filters(filters: list[Json]) -> list[ParameterFilter]:
    # DescribeParameters' older `Filters` (keys Name, Type, KeyId); a Name value matches the
    # names that begin with it.
    checked = []
    for f in filters:
        key = _member(f, "Key", str, "Filters")
        if key not in ("Name", "Type", "KeyId"):
            raise InvalidFilterKey(
                f"The filter key {key!r} is not valid in Filters. "
                "Valid filter keys include: [Name, Type, KeyId]"
            )
        option = "BeginsWith" if key == "Name" else "Equals"
        values = tuple(_member(f, "Values", list, "Filters") or ())
        checked.append(ParameterFilter(key, values, option))
    return checked


def _page(items: list[Json], next_token: str | None) -> Json:
    page: Json = {"Parameters": items}
    if next_token is not None:
        page["NextToken"] = next_token
    return page


def _optional(description: str, key_id: str | None, allowed_pattern: str | None) -> Json:
    shape: Json = {}
    if description:
        shape["Description"] = description
    if key_id is not None:
        shape["KeyId"] = key_id
    if allowed_pattern is not None:
        shape["AllowedPattern"] = allowed_pattern
    return shape
