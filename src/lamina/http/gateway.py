"""The data plane's HTTP front door. Routes from `http`/`httpApi`/`alb` events are mapped
here by deployments; with no route matching, it answers as API Gateway does."""

from __future__ import annotations

from lamina.http.server import Request, Response

_NOT_FOUND = Response(404, b'{"message":"Not Found"}', [("x-amzn-ErrorType", "NotFoundException")])


class Gateway:
    async def __call__(self, request: Request) -> Response:
        return _NOT_FOUND
