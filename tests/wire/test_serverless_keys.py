"""serverless.yml keys beyond the minimal reader: provider settings, package, the file's own
layers, plugins, PHP runtimes, and what is accepted but explained (notes, warnings)."""

from __future__ import annotations

import pytest

from lamina.core.runtimes import choose
from lamina.wire.serverless import (
    LayerDefinition,
    PackageSpec,
    ServerlessConfigError,
    dotted,
    layer_logical_id,
    load_document,
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


def _problems(text: str) -> list[str]:
    with pytest.raises(ServerlessConfigError) as caught:
        parse_service(text)
    return caught.value.problems


def _with_provider(lines: str) -> str:
    return MINIMAL.replace("  runtime: python3.12\n", "  runtime: python3.12\n" + lines)


def test_full_provider_settings_are_accepted() -> None:
    text = _with_provider(
        "  architecture: arm64\n"
        "  logRetentionInDays: 14\n"
        "  versionFunctions: false\n"
        "  tags: {team: shop, cost: 12}\n"
        "  apiGateway: {binaryMediaTypes: ['*/*'], shouldStartNameWithService: true}\n"
        "  httpApi: {name: shop-api, payload: 2.0, cors: {allowedOrigins: ['*']}}\n"
        "  deploymentMethod: direct\n"
    ).replace(
        "    handler: handler.hello\n",
        "    handler: handler.hello\n    reservedConcurrency: 5\n    provisionedConcurrency: 1\n",
    )

    service = parse_service(text)

    assert service.version_functions is False
    hello = service.functions["hello"]
    assert (hello.architecture, hello.reserved_concurrency, hello.provisioned_concurrency) == (
        "arm64",
        5,
        1,
    )
    assert service.warnings == service.notes == service.blockers == ()


def test_provider_setting_errors() -> None:
    text = _with_provider(
        "  architecture: sparc\n"
        "  logRetentionInDays: 10\n"
        "  versionFunctions: 'yes'\n"
        "  tags: {team: [a]}\n"
        "  httpApi: {payload: '3.0', cors: maybe}\n"
        "  apiGateway: nope\n"
    )

    assert _problems(text) == [
        "serverless.yml:5: provider.architecture = 'sparc': must be one of x86_64, arm64",
        "serverless.yml:6: provider.logRetentionInDays = 10: must be one of 1, 3, 5, 7, 14, "
        "30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, "
        "3653",
        "serverless.yml:7: provider.versionFunctions = 'yes': must be true or false",
        "serverless.yml:8: provider.tags.team = [...]: must be a string, number or boolean",
        "serverless.yml:9: provider.httpApi.payload = '3.0': must be '1.0' or '2.0'",
        "serverless.yml:9: provider.httpApi.cors = 'maybe': must be true, false or a map of "
        "CORS settings",
        "serverless.yml:10: provider.apiGateway = 'nope': must be a map",
    ]


def test_concurrency_settings_are_checked() -> None:
    text = MINIMAL + "    reservedConcurrency: -1\n    provisionedConcurrency: many\n"

    assert _problems(text) == [
        "serverless.yml:8: functions.hello.reservedConcurrency = -1: must be between 0 and 1000000",
        "serverless.yml:9: functions.hello.provisionedConcurrency = 'many': must be an integer",
    ]


def test_iam_is_accepted_with_a_note_and_resources_with_a_warning() -> None:
    text = _with_provider("  iam:\n    role:\n      statements: []\n") + (
        "resources:\n  Resources: {}\nconstructs:\n  jobs: {type: queue}\n"
    )

    service = parse_service(text)

    assert service.notes == (
        "serverless.yml:5: provider.iam: IAM roles and statements are accepted but not "
        "enforced by Lamina",
    )
    assert service.warnings == (
        "serverless.yml:11: resources: CloudFormation resources are not created by Lamina; ignored",
        "serverless.yml:13: constructs: Lift constructs are not supported yet; ignored",
    )


def test_plugins() -> None:
    text = MINIMAL + (
        "plugins:\n"
        "  - ./vendor/bref/bref\n"
        "  - serverless-python-requirements\n"
        "  - my-company-plugin\n"
        "  - 3\n"
    )

    assert _problems(text) == ["serverless.yml:12: plugins[3] = 3: must be a plugin name"]
    service = parse_service(text.replace("  - 3\n", ""))
    assert service.warnings == (
        "serverless.yml:11: plugins[2]: plugin 'my-company-plugin' is unknown to Lamina, "
        "which runs no plugins; ignored",
    )


def test_framework_version_other_than_3_is_warned_about() -> None:
    assert parse_service("frameworkVersion: '3'\n" + MINIMAL).warnings == ()
    assert parse_service("frameworkVersion: '^2.1'\n" + MINIMAL).warnings == (
        "serverless.yml:1: frameworkVersion: Lamina reads Serverless Framework v3 files; this "
        "one asks for '^2.1'",
    )


def test_root_settings_are_typed() -> None:
    text = "useDotenv: 1\nparams: {prod: 3}\npackage: {individually: 'no'}\ncustom: []\n"

    assert _problems(text + MINIMAL) == [
        "serverless.yml:1: useDotenv = 1: must be true or false",
        "serverless.yml:2: params.prod = 3: must be a map of parameter names to values",
        "serverless.yml:3: package.individually = 'no': must be true or false",
        "serverless.yml:4: custom = [...]: must be a map",
    ]


def test_package_settings() -> None:
    text = MINIMAL.replace(
        "    handler: handler.hello\n",
        "    handler: handler.hello\n"
        "    package:\n      individually: true\n      patterns: ['!tests/**']\n",
    ) + (
        "useDotenv: true\n"
        "package:\n  patterns: ['!*.md']\n  exclude: [docs/**]\n  include: [docs/keep.md]\n"
    )

    service = parse_service(text)

    assert service.use_dotenv is True
    assert service.package == PackageSpec(
        patterns=("!docs/**", "docs/keep.md", "!*.md"), individually=False, artifact=None
    )
    assert service.functions["hello"].package == PackageSpec(
        patterns=("!tests/**",), individually=True
    )
    assert service.warnings == (
        "serverless.yml:14: package.exclude: is deprecated; use package.patterns",
        "serverless.yml:15: package.include: is deprecated; use package.patterns",
    )


def test_artifacts_in_s3_are_refused() -> None:
    assert _problems(MINIMAL + "package:\n  artifact: s3://bucket/app.zip\n") == [
        "serverless.yml:9: package.artifact: artifacts in S3 are not supported; give a local zip"
    ]


def test_own_layers_and_references_to_them() -> None:
    text = MINIMAL.replace(
        "    handler: handler.hello\n",
        "    handler: handler.hello\n"
        "    layers:\n"
        "      - {Ref: CommonDashlibsLambdaLayer}\n"
        "      - arn:aws:lambda:us-east-1:0:layer:x:1\n",
    ) + (
        "layers:\n"
        "  common-libs:\n"
        "    path: layer\n"
        "    name: shop-libs\n"
        "    description: Shared code\n"
        "    compatibleRuntimes: [python3.12]\n"
        "    licenseInfo: MIT\n"
    )

    service = parse_service(text)

    assert service.layers == {
        "common-libs": LayerDefinition(
            key="common-libs",
            name="shop-libs",
            path="layer",
            description="Shared code",
            compatible_runtimes=("python3.12",),
        )
    }
    assert service.functions["hello"].layers == (
        "layer:common-libs",
        "arn:aws:lambda:us-east-1:0:layer:x:1",
    )


def test_layer_errors() -> None:
    text = _with_provider("  layers:\n    - {Ref: NopeLambdaLayer}\n    - 7\n") + (
        "layers:\n  vendor:\n    description: no path\n  'bad name!':\n    path: x\n"
    )

    assert _problems(text) == [
        "serverless.yml:6: provider.layers[0] = 'NopeLambdaLayer': refers to no layer of this "
        "file (its layers: Bad name!LambdaLayer, VendorLambdaLayer)",
        "serverless.yml:7: provider.layers[1] = 7: must be a layer version ARN or "
        "{Ref: <Key>LambdaLayer}",
        "serverless.yml:12: layers.vendor.path: required (the directory the layer is built from)",
        "serverless.yml:14: layers.bad name! = 'bad name!': layer names must be 1-140 "
        "characters of letters, digits, '-' and '_'",
    ]


@pytest.mark.parametrize(
    ("key", "logical_id"),
    [
        ("php", "PhpLambdaLayer"),
        ("my-layer", "MyDashlayerLambdaLayer"),
        ("a_b", "AUnderscorebLambdaLayer"),
    ],
)
def test_layer_logical_ids_are_serverless_s(key: str, logical_id: str) -> None:
    assert layer_logical_id(key) == logical_id


def test_php_runtimes_become_provided_al2_with_lamina_s_runtime_layer() -> None:
    text = """\
service: site
provider:
  name: aws
  runtime: php-84-fpm
functions:
  web:
    handler: public/index.php
  worker:
    handler: worker.php
    runtime: php-84
  artisan:
    handler: artisan
    runtime: provided.al2
    layers:
      - arn:lamina:runtime:arm-php-82
      - arn:lamina:runtime:console
"""
    service = parse_service(text)

    shapes = {k: (f.runtime, f.layers) for k, f in service.functions.items()}
    assert shapes == {
        "web": ("provided.al2", ("arn:lamina:runtime:php-84-fpm",)),
        "worker": ("provided.al2", ("arn:lamina:runtime:php-84",)),
        "artisan": (
            "provided.al2",
            ("arn:lamina:runtime:arm-php-82", "arn:lamina:runtime:console"),
        ),
    }
    assert service.blockers == ()
    kinds = {k: choose(f.runtime, f.layers, f.environment) for k, f in service.functions.items()}
    assert {k: (c.kind, c.php_version) for k, c in kinds.items()} == {
        "web": ("php-fpm", "8.4"),
        "worker": ("php-function", "8.4"),
        "artisan": ("php-console", "8.2"),
    }


def test_a_php_shorthand_puts_its_layer_before_the_function_s_own() -> None:
    text = MINIMAL.replace("python3.12", "php-82-console") + (
        "    layers: ['arn:aws:lambda:x:1:layer:y:1']\n"
    )

    hello = parse_service(text).functions["hello"]

    assert (hello.runtime, hello.layers) == (
        "provided.al2",
        ("arn:lamina:runtime:php-82-console", "arn:aws:lambda:x:1:layer:y:1"),
    )


def test_image_functions_are_refused() -> None:
    text = MINIMAL.replace("    handler: handler.hello\n", "    image: repo/app:latest\n")

    assert _problems(text) == [
        "serverless.yml:7: functions.hello.image: container images are not supported by Lamina"
    ]


def test_intrinsic_functions_in_the_environment_are_named() -> None:
    text = MINIMAL + "    environment:\n      QUEUE: !Ref JobsQueue\n      EMPTY: null\n"

    assert _problems(text) == [
        "serverless.yml:9: functions.hello.environment.QUEUE = {...}: CloudFormation "
        "functions (Ref, Fn::*) are not supported by Lamina"
    ]
    fine = parse_service(text.replace("      QUEUE: !Ref JobsQueue\n", ""))
    assert fine.functions["hello"].environment == {}  # null leaves a variable out


def test_documents_know_the_line_of_every_key_and_item() -> None:
    document = load_document(MINIMAL + "    events:\n      - httpApi: '*'\n      - schedule: x\n")

    assert document.lines[("functions", "hello", "events", 1)] == 10
    assert document.lines[("functions", "hello", "events", 1, "schedule")] == 10
    assert document.line(("functions", "hello", "events", 1, "schedule", "rate")) == 10
    assert document.line(("custom", "nothing")) is None
    assert dotted(("functions", "hello", "events", 1, "schedule")) == (
        "functions.hello.events[1].schedule"
    )


def test_warnings_come_with_the_problems_of_a_refused_file() -> None:
    text = _with_provider("  memoryLimit: 512\n  timeout: 0\n")

    with pytest.raises(ServerlessConfigError) as caught:
        parse_service(text)

    assert caught.value.problems == [
        "serverless.yml:6: provider.timeout = 0: must be between 1 and 900 seconds"
    ]
    assert caught.value.warnings == (
        "serverless.yml:5: provider.memoryLimit: unknown key; did you mean 'memorySize'?",
    )
