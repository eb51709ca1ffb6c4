"""Python handlers of the benchmark: the cheapest possible answer, a JSON echo, and a sleep
that holds an environment busy (scale-up and memory figures start environments with it)."""

import time


def noop(event, context):
    return {"statusCode": 200, "body": "ok"}


def echo(event, context):
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": event.get("body") or "",
    }


def sleep(event, context):
    time.sleep(float(event.get("seconds", 0.5)))
    return {"statusCode": 200, "body": "slept"}
