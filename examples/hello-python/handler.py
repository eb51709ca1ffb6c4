import os


def hello(event, context):
    name = event.get("name", "world")
    print(f"greeting {name}")
    return {
        "message": f"{os.environ['GREETING']}, {name}!",
        "function": context.function_name,
        "requestId": context.aws_request_id,
    }
