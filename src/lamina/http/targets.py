"""`POST /` on the control port, shared by the AWS JSON-protocol APIs Lamina serves (SSM,
SQS): each request goes to the API its `X-Amz-Target` prefix names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from lamina.core.errors import UnknownOperationException
from lamina.http import errors
from lamina.http.control_api import Route, RouteEntry
from lamina.http.server import Request, Response


class TargetRouter:
    """A control API `Router`: `{"AmazonSSM.": ssm.handle, "AmazonSQS.": sqs.handle}`."""

    def __init__(self, handlers: Mapping[str, Route]) -> None:
        self.handlers = dict(handlers)

    def __repr__(self) -> str:
        return f"<TargetRouter {', '.join(self.handlers)}>"

    def routes(self) -> list[RouteEntry]:
        return [("POST", re.compile(r"/"), self.handle)]

    async def handle(self, request: Request, match: re.Match[str], request_id: str) -> Response:
        target = request.header("x-amz-target")
        for prefix, handler in self.handlers.items():
            if target.startswith(prefix):
                return await handler(request, match, request_id)
        known = ", ".join(f"{p}<Operation>" for p in self.handlers)
        if not target and request.body.startswith(b"Action="):
            # An SDK still on SQS's (or another service's) Query protocol.
            message = f"Query-protocol requests (Action=...) are not served; expected {known}"
        else:
            message = f"X-Amz-Target = {target!r}: expected one of {known}"
        return errors.render_json_protocol(UnknownOperationException(message), request_id)
