"""Lamina's own deploy routes (`/lamina/v1`), which `lamina deploy/info/remove/rollback`
call: content-addressed code bundles, deployments of a service/stage, stacks.

    HEAD   /lamina/v1/bundles/{sha256}                      200 | 404
    PUT    /lamina/v1/bundles/{sha256}                      201 {CodeSha256, CodeSize}
    POST   /lamina/v1/deployments                           201 {deployment}
    GET    /lamina/v1/stacks                                200 {stacks}
    GET    /lamina/v1/stacks/{service}/{stage}              200 {service, stage, region, deployment}
    DELETE /lamina/v1/stacks/{service}/{stage}              204
    GET    /lamina/v1/stacks/{service}/{stage}/deployments  200 {deployments}, newest first
    POST   /lamina/v1/stacks/{service}/{stage}/rollback     201 {deployment}
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any
from urllib.parse import unquote

from lamina.core.deployments import Deployment, Stack
from lamina.core.errors import InvalidParameterValueException
from lamina.core.routes import Route
from lamina.http.control_api import RouteEntry, json_body, json_response
from lamina.http.server import Request, Response
from lamina.services import php_launch
from lamina.services.deploy import DeployService
from lamina.services.deploy_plan import CodeBundles
from lamina.wire.deployment import from_json

_SHA = re.compile(r"[0-9a-f]{64}")
_STACK = r"/lamina/v1/stacks/(?P<service>[^/]+)/(?P<stage>[^/]+)"


class LaminaApi:
    def __init__(self, *, deploy: DeployService, code: CodeBundles, data_url: str = "") -> None:
        self._deploy = deploy
        self._code = code
        # The data plane's base URL, for endpoint URLs; known once its socket is bound.
        self.data_url = data_url

    def routes(self) -> list[RouteEntry]:
        bundle = re.compile(r"/lamina/v1/bundles/(?P<sha>[^/]+)")
        return [
            ("HEAD", bundle, self.has_bundle),
            ("PUT", bundle, self.put_bundle),
            ("POST", re.compile(r"/lamina/v1/deployments/?"), self.create_deployment),
            ("GET", re.compile(r"/lamina/v1/stacks/?"), self.list_stacks),
            ("GET", re.compile(rf"{_STACK}/?"), self.get_stack),
            ("DELETE", re.compile(rf"{_STACK}/?"), self.delete_stack),
            ("GET", re.compile(rf"{_STACK}/deployments/?"), self.list_deployments),
            ("POST", re.compile(rf"{_STACK}/rollback/?"), self.rollback),
        ]

    # bundles

    async def has_bundle(self, request: Request, match: re.Match[str], rid: str) -> Response:
        # A HEAD answer has no body, so errors are not rendered: a bad digest is simply absent.
        sha = match["sha"]
        found = _SHA.fullmatch(sha) is not None and self._code.has(sha)
        headers = [("x-amzn-RequestId", rid)]
        if not found:
            headers.append(("x-amzn-ErrorType", "ResourceNotFoundException"))
        return Response(200 if found else 404, b"", headers)

    async def put_bundle(self, request: Request, match: re.Match[str], rid: str) -> Response:
        sha = match["sha"]
        if not _SHA.fullmatch(sha):
            raise InvalidParameterValueException(
                f"bundle {sha!r}: the URL must end with the bundle's SHA-256 "
                "(64 lowercase hex digits)"
            )
        actual = hashlib.sha256(request.body).hexdigest()
        if actual != sha:
            raise InvalidParameterValueException(
                f"bundle {sha}: the body's SHA-256 is {actual} ({len(request.body)} bytes); "
                "the upload is incomplete or the URL names another bundle"
            )
        stored, size = self._code.put(request.body)
        return json_response({"CodeSha256": stored, "CodeSize": size}, rid, 201)

    # deployments

    async def create_deployment(self, request: Request, match: re.Match[str], rid: str) -> Response:
        body = json_body(request)
        try:
            spec = from_json(body)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidParameterValueException(
                f"deployment document: {type(exc).__name__}: {exc} "
                "(expected the DeploymentSpec of lamina.wire.deployment)"
            ) from None
        deployment = self._deploy.deploy(spec)
        answer = self._deployment(deployment)
        # Said once per deploy: functions that will run on another PHP than they ask for.
        warnings = php_launch.deployment_warnings(spec)
        if warnings:
            answer["warnings"] = warnings
        return json_response({"deployment": answer}, rid, 201)

    async def rollback(self, request: Request, match: re.Match[str], rid: str) -> Response:
        service, stage = _stack(match)
        target = json_body(request).get("deployment")
        if target is not None and (
            not isinstance(target, int) or isinstance(target, bool) or target < 1
        ):
            raise InvalidParameterValueException(
                f"deployment = {target!r}: must be a deployment id of {service}-{stage}, "
                "or absent for the previous deployment"
            )
        deployment = self._deploy.rollback(service, stage, target)
        return json_response({"deployment": self._deployment(deployment)}, rid, 201)

    # stacks

    async def list_stacks(self, request: Request, match: re.Match[str], rid: str) -> Response:
        stacks = [_stack_json(s) for s in self._deploy.stacks()]
        return json_response({"stacks": stacks}, rid)

    async def get_stack(self, request: Request, match: re.Match[str], rid: str) -> Response:
        stack, live = self._deploy.stack(*_stack(match))
        body = {
            "service": stack.service,
            "stage": stack.stage,
            "region": stack.region,
            "updated": _iso(stack.updated),
            "deployment": self._deployment(live),
        }
        return json_response(body, rid)

    async def delete_stack(self, request: Request, match: re.Match[str], rid: str) -> Response:
        self._deploy.remove(*_stack(match))
        return Response(204, headers=[("x-amzn-RequestId", rid)])

    async def list_deployments(self, request: Request, match: re.Match[str], rid: str) -> Response:
        history = self._deploy.deployments(*_stack(match))
        items = [
            {"id": d.id, "created": _iso(d.created), "functions": _functions(d)} for d in history
        ]
        return json_response({"deployments": items}, rid)

    def _deployment(self, deployment: Deployment) -> dict[str, Any]:
        endpoints = self._deploy.endpoints(deployment.service, deployment.stage, self.data_url)
        return {
            "id": deployment.id,
            "service": deployment.service,
            "stage": deployment.stage,
            "region": deployment.region,
            "created": _iso(deployment.created),
            "functions": _functions(deployment),
            "endpoints": [_endpoint(route, url) for route, url in endpoints],
        }


def _stack(match: re.Match[str]) -> tuple[str, str]:
    return unquote(match["service"]), unquote(match["stage"])


def _functions(deployment: Deployment) -> list[dict[str, Any]]:
    return [
        {"key": f.key, "name": f.name, "version": f.version, "changed": f.changed}
        for f in deployment.functions
    ]


def _endpoint(route: Route, url: str) -> dict[str, str]:
    return {"kind": route.kind, "method": route.method, "path": route.path, "url": url}


def _stack_json(stack: Stack) -> dict[str, Any]:
    return {
        "service": stack.service,
        "stage": stack.stage,
        "region": stack.region,
        "deployment_id": stack.deployment_id,
        "updated": _iso(stack.updated),
    }


def _iso(epoch: float) -> str:
    """ISO 8601 in UTC with milliseconds: `2024-05-01T12:00:00.000Z`."""
    millis = int(epoch * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{millis:03d}Z"
