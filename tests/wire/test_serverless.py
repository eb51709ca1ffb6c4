from __future__ import annotations

import pytest

from lamina.wire.serverless import (
    FunctionSpec,
    ServerlessConfigError,
    Service,
    function_names,
    parse_service,
)

MINIMAL = """\
service: shop
provider:
  name: aws
  runtime: python3.12
functions:
  hello:
    handler: handler.hello
"""


def _problems(text: str, **options: str) -> list[str]:
    with pytest.raises(ServerlessConfigError) as caught:
        parse_service(text, **options)
    return caught.value.problems


def test_minimal_service_gets_serverless_defaults() -> None:
    service = parse_service(MINIMAL)

    assert service == Service(
        name="shop",
        stage="dev",
        region="us-east-1",
        functions={
            "hello": FunctionSpec(
                key="hello",
                name="shop-dev-hello",
                handler="handler.hello",
                runtime="python3.12",
                memory_size=1024,
                timeout=6,
                environment={},
                layers=(),
            )
        },
    )


def test_stage_and_region_from_options_then_provider_then_defaults() -> None:
    text = MINIMAL.replace("  name: aws\n", "  name: aws\n  stage: staging\n  region: eu-west-1\n")

    from_provider = parse_service(text)
    from_options = parse_service(text, stage="prod", region="eu-central-1")

    assert (from_provider.stage, from_provider.region) == ("staging", "eu-west-1")
    assert from_provider.functions["hello"].name == "shop-staging-hello"
    assert (from_options.stage, from_options.region) == ("prod", "eu-central-1")
    assert from_options.functions["hello"].name == "shop-prod-hello"


def test_function_settings_override_the_provider_defaults() -> None:
    text = """\
service: shop
provider:
  name: aws
  runtime: python3.11
  memorySize: 512
  timeout: 10
  layers: [arn:aws:lambda:us-east-1:0:layer:base:1]
  environment:
    TABLE: orders
    STAGE: dev
functions:
  api:
    handler: handler.api
    name: shop-api
    description: The HTTP API
    runtime: provided.al2023
    memorySize: 2048
    timeout: 29
    layers: [arn:aws:lambda:us-east-1:0:layer:php:3]
    environment:
      STAGE: prod
      EXTRA: x
  worker:
    handler: handler.worker
"""
    api, worker = parse_service(text).functions.values()

    assert api == FunctionSpec(
        key="api",
        name="shop-api",
        handler="handler.api",
        runtime="provided.al2023",
        memory_size=2048,
        timeout=29,
        environment={"TABLE": "orders", "STAGE": "prod", "EXTRA": "x"},
        layers=("arn:aws:lambda:us-east-1:0:layer:php:3",),  # replaced, not merged
        description="The HTTP API",
    )
    assert (worker.runtime, worker.memory_size, worker.timeout) == ("python3.11", 512, 10)
    assert worker.environment == {"TABLE": "orders", "STAGE": "dev"}
    assert worker.layers == ("arn:aws:lambda:us-east-1:0:layer:base:1",)


def test_environment_values_are_stringified_as_serverless_does() -> None:
    text = MINIMAL + (
        "    environment:\n"
        "      COUNT: 3\n"
        "      RATIO: 1.5\n"
        "      WHOLE: 2.0\n"
        "      ENABLED: true\n"
        "      COUNTRY: no\n"  # YAML 1.2, as js-yaml reads it: a string
        "      SINCE: 2024-01-01\n"
        "      SECRET: ${ssm:/shop/secret}\n"
    )

    environment = parse_service(text).functions["hello"].environment

    assert environment == {
        "COUNT": "3",
        "RATIO": "1.5",
        "WHOLE": "2",
        "ENABLED": "true",
        "COUNTRY": "no",
        "SINCE": "2024-01-01",
        "SECRET": "${ssm:/shop/secret}",  # variables are left for the resolver
    }


def test_every_problem_is_reported_at_once_with_its_line() -> None:
    text = """\
service: shop
provider:
  name: google
  runtime: python3.12
  timeout: 901
functions:
  hello:
    handler: handler.hello
    memorySize: 20
  bye:
    runtime: nodejs18.x
  env:
    handler: handler.env
    environment:
      AWS_REGION: eu-west-1
      X: 1
      OK_VALUE: [1, 2]
  broken:
  "bad key":
    handler: a.b
"""
    assert _problems(text) == [
        "serverless.yml:3: provider.name = 'google': must be 'aws'",
        "serverless.yml:5: provider.timeout = 901: must be between 1 and 900 seconds",
        "serverless.yml:9: functions.hello.memorySize = 20: must be between 128 and 10240 MB",
        "serverless.yml:10: functions.bye.handler: required",
        "serverless.yml:11: functions.bye.runtime = 'nodejs18.x': must be one of provided, "
        "provided.al2, provided.al2023, python3.10, python3.11, python3.12, python3.13, "
        "python3.8, python3.9, or a Bref PHP runtime (php-84, php-84-fpm, php-84-console)",
        "serverless.yml:15: functions.env.environment.AWS_REGION: "
        "is a reserved variable Lambda sets itself",
        "serverless.yml:16: functions.env.environment.X: names must start with a letter and "
        "have at least 2 characters of letters, digits and '_'",
        "serverless.yml:17: functions.env.environment.OK_VALUE = [...]: "
        "must be a string, number or boolean",
        "serverless.yml:18: functions.broken = null: must be a map with at least `handler`",
        "serverless.yml:19: functions.bad key: function keys must be letters, digits, '-' and '_'",
    ]


def test_required_top_level_keys() -> None:
    assert _problems("frameworkVersion: '3'\n") == [
        "serverless.yml: service: required",
        "serverless.yml: provider: required (with `name: aws`)",
    ]


def test_runtime_is_required_somewhere() -> None:
    text = "service: shop\nprovider:\n  name: aws\nfunctions:\n  hello:\n    handler: h.h\n"

    assert _problems(text) == [
        "serverless.yml:5: functions.hello.runtime: required (set it here or in provider.runtime)"
    ]


def test_an_invalid_provider_runtime_is_reported_once() -> None:
    text = MINIMAL.replace("python3.12", "nodejs18.x") + "  other:\n    handler: h.other\n"

    assert len(_problems(text)) == 1


def test_types_are_checked() -> None:
    text = MINIMAL + "    timeout: '30'\n    handler2: x\n    description: 12\n"

    assert _problems(text) == [
        "serverless.yml:8: functions.hello.timeout = '30': must be an integer (seconds)",
        "serverless.yml:10: functions.hello.description = 12: must be a string",
    ]


def test_variables_are_left_untouched_and_named_when_they_break_a_rule() -> None:
    text = MINIMAL + "    name: ${self:service}-hello\n    memorySize: ${self:custom.memory}\n"

    assert _problems(text) == [
        "serverless.yml:8: functions.hello.name = '${self:service}-hello': must be 1-64 "
        "characters of letters, digits, '-' and '_' (variables are not resolved yet)",
        "serverless.yml:9: functions.hello.memorySize = '${self:custom.memory}': "
        "must be an integer (MB) (variables are not resolved yet)",
    ]


def test_generated_names_longer_than_lambda_allows_point_at_name() -> None:
    key = "k" * 60

    [problem] = _problems(MINIMAL.replace("hello:", f"{key}:"))

    assert problem.startswith(f"serverless.yml:6: functions.{key}: the function name ")
    assert problem.endswith("set `name:` to choose another")


def test_unknown_keys_are_warnings_with_a_suggestion() -> None:
    text = MINIMAL.replace("  name: aws\n", "  name: aws\n  memoryLimit: 512\n") + (
        "    timout: 3\n    events:\n      - httpApi: '*'\ncustomm: {}\n"
    )

    service = parse_service(text)

    assert service.warnings == (
        "serverless.yml:4: provider.memoryLimit: unknown key; did you mean 'memorySize'?",
        "serverless.yml:9: functions.hello.timout: unknown key; did you mean 'timeout'?",
        "serverless.yml:12: customm: unknown key; did you mean 'custom'?",
    )
    assert service.functions["hello"].memory_size == 1024


def test_unknown_keys_without_a_close_match() -> None:
    service = parse_service(MINIMAL + "    zzzzzz: 1\n")

    assert service.warnings == ("serverless.yml:8: functions.hello.zzzzzz: unknown key",)


@pytest.mark.parametrize(
    ("mode", "warnings", "problems"),
    [("off", 0, 0), ("warn", 1, 0), ("error", 0, 1)],
)
def test_config_validation_mode(mode: str, warnings: int, problems: int) -> None:
    text = f"configValidationMode: {mode}\n" + MINIMAL + "    timout: 3\n"

    if problems:
        assert len(_problems(text)) == problems
    else:
        assert len(parse_service(text).warnings) == warnings


def test_yaml_syntax_errors_name_the_line() -> None:
    assert _problems("service: shop\nprovider:\n  name: [aws\n", file_name="sls.yml") == [
        "sls.yml:4: invalid YAML: expected ',' or ']', but got '<stream end>'"
    ]


def test_duplicate_keys_are_refused_as_js_yaml_does() -> None:
    assert _problems(MINIMAL + "    handler: other.handler\n") == [
        "serverless.yml:8: handler: duplicated mapping key"
    ]


def test_merge_keys_may_be_overridden() -> None:
    text = MINIMAL + (
        "  other:\n"
        "    <<: &defaults\n"
        "      handler: handler.other\n"
        "      memorySize: 256\n"
        "    memorySize: 512\n"
    )

    assert parse_service(text).functions["other"].memory_size == 512


def test_cloudformation_short_forms_parse() -> None:
    text = MINIMAL + (
        "resources:\n"
        "  Resources:\n"
        "    Queue:\n"
        "      Type: AWS::SQS::Queue\n"
        "      Properties:\n"
        "        QueueName: !Sub '${AWS::StackName}-jobs'\n"
        "        Arn: !GetAtt Other.Arn\n"
        "        Ref: !Ref Other\n"
    )

    assert parse_service(text).name == "shop"


@pytest.mark.parametrize(
    "text",
    ["", "- a\n- b\n"],
)
def test_a_file_that_is_not_a_map(text: str) -> None:
    assert len(_problems(text)) == 1


def test_function_names_are_read_leniently() -> None:
    text = MINIMAL.replace("python3.12", "cobol") + "  named:\n    name: custom\n"

    assert function_names(text) == {"hello": "shop-dev-hello", "named": "custom"}
    assert function_names(text, stage="prod")["hello"] == "shop-prod-hello"
    assert function_names(text.replace("  name: aws\n", "  name: aws\n  stage: qa\n")) == {
        "hello": "shop-qa-hello",
        "named": "custom",
    }
    assert function_names("service: x\n") == {}
