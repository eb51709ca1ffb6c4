"""An HTTP API on Lamina: two HTTP API (payload 2.0) routes and one REST API (1.0) route."""

import json
import os


def _json(status, body):
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }


def hello(event, context):
    name = (event.get("queryStringParameters") or {}).get("name", "world")
    return _json(
        200,
        {
            "message": f"{os.environ['GREETING']}, {name}!",
            "stage": os.environ["STAGE"],
            "logLevel": os.environ["LOG_LEVEL"],
            "function": context.function_name,
        },
    )


def user(event, context):
    user_id = event["pathParameters"]["id"]
    return _json(200, {"id": user_id, "route": event["routeKey"]})


def status(event, context):
    # Payload 1.0: the method and path are top-level fields of the event.
    return _json(200, {"status": "ok", "method": event["httpMethod"], "path": event["path"]})
