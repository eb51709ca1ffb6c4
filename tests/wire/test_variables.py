"""Variables in serverless.yml: the syntax, every source, fallbacks, types, nesting,
escapes, cycles, and the golden messages of what cannot be resolved."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from lamina.wire.serverless import ServerlessConfigError, load_document
from lamina.wire.variables import (
    Literal,
    Reference,
    Sources,
    SsmParameter,
    Template,
    Variable,
    VariableSourceError,
    VariableSyntaxError,
    parse,
    parse_dotenv,
    resolve,
)


def _resolve(text: str, **sources: Any) -> dict[str, Any]:
    document = resolve(load_document(text), Sources(**sources))
    assert document.resolved
    return document.root


def _custom(values: str, **sources: Any) -> dict[str, Any]:
    """Resolve `custom:` entries given as `  key: value` lines."""
    custom: dict[str, Any] = _resolve("service: shop\ncustom:\n" + values, **sources)["custom"]
    return custom


def _problems(text: str, **sources: Any) -> list[str]:
    with pytest.raises(ServerlessConfigError) as caught:
        resolve(load_document(text), Sources(**sources))
    return caught.value.problems


def _files(files: dict[str, str]) -> Callable[[str], str | None]:
    return files.get


def _store(*parameters: SsmParameter) -> Callable[[str, bool], SsmParameter | None]:
    by_name = {p.name: p for p in parameters}
    return lambda name, decrypt: by_name.get(name)


# --- syntax ----------------------------------------------------------------------------------


def test_parse_a_variable_with_fallbacks() -> None:
    assert parse("${opt:stage, self:provider.stage, 'dev'}") == (
        Variable(
            0,
            40,
            (
                Reference("opt", None, Literal("stage")),
                Reference("self", None, Literal("provider.stage")),
                Literal("dev"),
            ),
        ),
    )


def test_parse_nested_variables_in_params_and_addresses() -> None:
    [variable] = parse("${file(./c.${opt:stage, 'dev'}.json):${env:KEY}}")

    [source] = variable.sources
    assert isinstance(source, Reference)
    assert source.params == (
        Template(
            "./c.${opt:stage, 'dev'}.json",
            (Variable(4, 23, (Reference("opt", None, Literal("stage")), Literal("dev"))),),
        ),
    )
    assert source.address == Template(
        "${env:KEY}", (Variable(0, 10, (Reference("env", None, Literal("KEY")),)),)
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("${a:x, 'single'}", "single"),
        ('${a:x, "dou\\"ble"}', 'dou"ble'),
        ("${a:x, 10}", 10),
        ("${a:x, 1.5}", 1.5),
        ("${a:x, 2.0}", 2),  # JavaScript has one kind of number
        ("${a:x, true}", True),
        ("${a:x, false}", False),
        ("${a:x, null}", None),
    ],
)
def test_literal_fallbacks(text: str, value: object) -> None:
    [variable] = parse(text)

    assert variable.sources[-1] == Literal(value)


@pytest.mark.parametrize(
    "text",
    [
        "${AWS::Region}",  # CloudFormation's, for Fn::Sub
        "${foo}",
        "${Self:service}",
        "${a::b}",
        "\\${self:service}",
        "$self:service",
        "${unterminated",
    ],
)
def test_text_that_only_looks_like_a_variable(text: str) -> None:
    assert parse(text) == ()


def test_params_are_literals_unless_they_hold_variables() -> None:
    [variable] = parse("${strToBool(true)}")

    assert variable.sources == (Reference("strToBool", (Literal(True),)),)
    [second] = parse("${file(./a.yml, 2, , 'x')}")
    assert second.sources == (
        Reference("file", (Literal("./a.yml"), Literal(2), Literal(None), Literal("x"))),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${self:a", "Missing variable closing bracket in ${self:a"),
        ("${opt:a, dev}", 'Invalid literal source "dev" at index 9 in "${opt:a, dev}"'),
        (
            "${opt:a, 'x', self:b}",
            "Invalid variable source at index 9 in \"${opt:a, 'x', self:b}\"",
        ),
        ("${self:a:b}", 'Invalid variable address at index 2 in "${self:a:b}"'),
        ("${file(a}", 'Invalid variable param at index 7 in "${file(a}"'),
        ("${self:${Bad:x}}", 'Invalid variable type at index 9 in "${self:${Bad:x}}"'),
        ("${opt:a, !x}", 'Invalid variable source at index 9 in "${opt:a, !x}"'),
    ],
)
def test_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(VariableSyntaxError) as caught:
        parse(text)

    assert str(caught.value) == message


def test_syntax_errors_are_reported_with_line_and_path() -> None:
    assert _problems("service: shop\ncustom:\n  x: ${self:a\n") == [
        'serverless.yml:3: Variable syntax error at "custom.x": Missing variable closing '
        "bracket in ${self:a"
    ]


# --- self, opt, sls, aws ---------------------------------------------------------------------


def test_self_references_resolve_first_and_keep_types() -> None:
    text = """\
service: shop
provider:
  name: aws
  stage: ${opt:stage, 'dev'}
  memorySize: ${self:custom.memory}
  environment: ${self:custom.environment}
custom:
  memory: 512
  environment:
    SERVICE: ${self:service}
    STAGE: ${self:provider.stage}
  first: ${self:custom.list.0}
  list: [a, b]
  missing: ${self:custom.nope, 'fallback'}
"""
    root = _resolve(text)

    assert root["provider"]["memorySize"] == 512
    assert root["provider"]["environment"] == {"SERVICE": "shop", "STAGE": "dev"}
    assert (root["custom"]["first"], root["custom"]["missing"]) == ("a", "fallback")


def test_opt_reads_any_option() -> None:
    custom = _custom(
        "  stage: ${opt:stage}\n"
        "  colour: ${opt:colour, 'blue'}\n"
        "  flag: ${opt:verbose}\n"
        "  params: ${opt:param}\n"
        "  all: ${opt:}\n",
        options={"stage": "prod", "verbose": True, "param": ["a=1"]},
    )

    assert custom == {
        "stage": "prod",
        "colour": "blue",
        "flag": True,
        "params": ["a=1"],
        "all": {"stage": "prod", "verbose": True, "param": ["a=1"]},
    }


@pytest.mark.parametrize(
    ("options", "provider", "stage"),
    [({"stage": "qa"}, "  stage: prod\n", "qa"), ({}, "  stage: prod\n", "prod"), ({}, "", "dev")],
)
def test_sls_stage(options: dict[str, str], provider: str, stage: str) -> None:
    text = f"service: shop\nprovider:\n  name: aws\n{provider}custom:\n  s: ${{sls:stage}}\n"

    assert _resolve(text, options=options)["custom"]["s"] == stage


def test_sls_instance_id_and_aws() -> None:
    text = """\
service: shop
provider:
  name: aws
  region: eu-west-1
custom:
  id: ${sls:instanceId}
  region: ${aws:region}
  account: ${aws:accountId}
"""
    assert _resolve(text, instance_id="abc")["custom"] == {
        "id": "abc",
        "region": "eu-west-1",
        "account": "000000000000",
    }
    custom = _resolve(text, options={"region": "ap-south-1"}, account_id="123")["custom"]
    assert (custom["region"], custom["account"]) == ("ap-south-1", "123")
    assert _custom("  r: ${aws:region}\n")["r"] == "us-east-1"


def test_unsupported_addresses() -> None:
    assert _problems("service: shop\ncustom:\n  a: ${sls:nope}\n  b: ${aws:}\n") == [
        'serverless.yml:3: Cannot resolve variable at "custom.a": Unsupported "nope" address '
        'argument in variable "sls" source',
        'serverless.yml:4: Cannot resolve variable at "custom.b": Missing address argument in '
        'variable "aws" source',
    ]


# --- env, dotenv, param ----------------------------------------------------------------------


def test_env_with_fallbacks_and_empty_values() -> None:
    custom = _custom(
        "  home: ${env:HOME}\n  empty: ${env:EMPTY, 'unset'}\n  none: ${env:NONE, null}\n",
        env={"HOME": "/root", "EMPTY": ""},
    )

    assert custom == {"home": "/root", "empty": "unset", "none": None}


def test_dotenv_files_are_read_for_the_stage_when_asked() -> None:
    text = "service: shop\nuseDotenv: true\nprovider:\n  stage: qa\ncustom:\n  a: ${env:A}\n"
    asked: list[str] = []

    def dotenv(stage: str) -> dict[str, str]:
        asked.append(stage)
        return {"A": "from .env.qa", "HOME": "overridden?"}

    assert _resolve(text, dotenv=dotenv)["custom"]["a"] == "from .env.qa"
    assert asked == ["qa"]
    real = _resolve(text, dotenv=dotenv, env={"A": "real"})
    assert real["custom"]["a"] == "real"  # the environment wins, as with dotenv
    off = text.replace("useDotenv: true", "useDotenv: false")
    assert _problems(off, dotenv=dotenv) == [
        'serverless.yml:6: Cannot resolve variable at "custom.a": Value not found at "env" source'
    ]


def test_params_from_the_command_line_then_the_stage_then_default() -> None:
    text = """\
service: shop
provider:
  stage: prod
params:
  default:
    a: default-a
    b: default-b
    c: default-c
  prod:
    b: prod-b
    c: prod-c
custom:
  a: ${param:a}
  b: ${param:b}
  c: ${param:c}
  d: ${param:d, 'none'}
"""
    custom = _resolve(text, params={"c": "cli-c"})["custom"]

    assert custom == {"a": "default-a", "b": "prod-b", "c": "cli-c", "d": "none"}
    assert _problems(text.replace(", 'none'", "")) == [
        'serverless.yml:16: Cannot resolve variable at "custom.d": Value not found at "param" '
        "source"
    ]


# --- file ------------------------------------------------------------------------------------


def test_files_yaml_json_and_text() -> None:
    files = _files(
        {
            "config/prod.yml": "db:\n  host: db.prod\n  port: 5432\nflag: no\n",
            "c.dev.json": json.dumps({"CREDS": {"user": "u"}}),
            "motd.txt": "hello",
            "self.yml": "name: ${self:service}-x\n",
        }
    )
    custom = _custom(
        "  host: ${file(./config/prod.yml):db.host}\n"
        "  port: ${file(config/prod.yml):db.port}\n"
        "  flag: ${file(config/prod.yml):flag}\n"
        "  creds: ${file(./c.${opt:stage, 'dev'}.json):CREDS}\n"
        "  whole: ${file(./c.dev.json)}\n"
        "  text: ${file(./motd.txt)}\n"
        "  missing: ${file(./nope.yml):x, 'fallback'}\n"
        "  missing_key: ${file(./config/prod.yml):db.nope, 0}\n"
        "  inner: ${file(./self.yml):name}\n",
        read_file=files,
    )

    assert custom == {
        "host": "db.prod",
        "port": 5432,
        "flag": "no",  # YAML 1.2, as js-yaml
        "creds": {"user": "u"},
        "whole": {"CREDS": {"user": "u"}},
        "text": "hello",
        "missing": "fallback",
        "missing_key": 0,
        "inner": "shop-x",  # a file's own variables are resolved too
    }


def test_file_errors() -> None:
    files = _files({"bad.json": "{", "bad.yml": "a: [", "app.js": "module.exports = {}"})

    assert _problems(
        "service: shop\ncustom:\n"
        "  a: ${file(../secrets.yml)}\n"
        "  b: ${file(./bad.json)}\n"
        "  c: ${file(./bad.yml)}\n"
        "  d: ${file(./app.js):x}\n"
        "  e: ${file()}\n",
        read_file=files,
    ) == [
        'serverless.yml:3: Cannot resolve variable at "custom.a": Cannot load file from '
        "outside of service folder",
        'serverless.yml:4: Cannot resolve variable at "custom.b": Cannot parse "bad.json": '
        "JSON parse error: Expecting property name enclosed in double quotes: line 1 column 2 "
        "(char 1)",
        'serverless.yml:5: Cannot resolve variable at "custom.c": Cannot parse "bad.yml": '
        "expected the node content, but found '<stream end>'",
        'serverless.yml:6: Cannot resolve variable at "custom.d": Cannot load "app.js": Lamina '
        "does not run JavaScript; use YAML or JSON",
        'serverless.yml:7: Cannot resolve variable at "custom.e": Missing path argument in '
        'variable "file" source',
    ]


def test_file_read_errors_from_the_cli_are_reported() -> None:
    def unreadable(path: str) -> str | None:
        raise VariableSourceError(f'Cannot parse "{path}": Permission denied')

    assert _problems("service: s\ncustom:\n  a: ${file(./x.yml)}\n", read_file=unreadable) == [
        'serverless.yml:3: Cannot resolve variable at "custom.a": Cannot parse "x.yml": '
        "Permission denied"
    ]


# --- ssm -------------------------------------------------------------------------------------


def test_ssm_types() -> None:
    store = _store(
        SsmParameter("/a/string", "String", "plain"),
        SsmParameter("/a/list", "StringList", "a,b,c"),
        SsmParameter("/a/secret", "SecureString", "s3cr3t"),
        SsmParameter("/a/json", "SecureString", '{"user": "u", "password": "p"}'),
        SsmParameter("/a/broken-json", "SecureString", "{not json"),
        SsmParameter("/a/templated", "SecureString", "pa${self:service}ss"),
    )
    custom = _custom(
        "  string: ${ssm:/a/string}\n"
        "  list: ${ssm:/a/list}\n"
        "  raw_list: ${ssm(raw):/a/list}\n"
        "  secret: ${ssm:/a/secret}\n"
        "  json: ${ssm:/a/json}\n"
        "  raw_json: ${ssm(raw):/a/json}\n"
        "  broken: ${ssm:/a/broken-json}\n"
        "  region: ${ssm(eu-west-1):/a/string}\n"
        "  missing: ${ssm:/a/missing, 'Hello'}\n"
        "  templated: ${ssm:/a/templated}\n"
        "  in_string: token=${ssm:/a/secret}\n",
        ssm=store,
    )

    assert custom == {
        "string": "plain",
        "list": ["a", "b", "c"],
        "raw_list": "a,b,c",
        "secret": "s3cr3t",
        "json": {"user": "u", "password": "p"},
        "raw_json": '{"user": "u", "password": "p"}',
        "broken": "{not json",
        "region": "plain",
        "missing": "Hello",
        "templated": "pa${self:service}ss",  # a secret is data, never configuration
        "in_string": "token=s3cr3t",
    }


def test_ssm_is_asked_once_per_name_and_decryption() -> None:
    calls: list[tuple[str, bool]] = []

    def ssm(name: str, decrypt: bool) -> SsmParameter | None:
        calls.append((name, decrypt))
        return SsmParameter(name, "SecureString", "v")

    _custom(
        "  a: ${ssm:/x}\n  b: ${ssm:/x}\n  c: ${ssm(noDecrypt):/x}\n  d: ${ssm:/y, 'z'}\n",
        ssm=ssm,
    )

    assert calls == [("/x", True), ("/x", False), ("/y", True)]


def test_ssm_golden_errors() -> None:
    def unreachable(name: str, decrypt: bool) -> SsmParameter | None:
        raise VariableSourceError("cannot reach Lamina at http://127.0.0.1:8081")

    text = """\
service: shop
provider:
  name: aws
  environment:
    TOKEN: ${ssm:/shop/token}
"""
    assert _problems(text, ssm=_store()) == [
        'serverless.yml:5: Cannot resolve variable at "provider.environment.TOKEN": Value not '
        'found at "ssm" source'
    ]
    assert _problems(text, ssm=unreachable) == [
        'serverless.yml:5: Cannot resolve variable at "provider.environment.TOKEN": cannot '
        "reach Lamina at http://127.0.0.1:8081"
    ]
    assert _problems(text) == [  # a resolver built without a parameter store
        'serverless.yml:5: Cannot resolve variable at "provider.environment.TOKEN": no SSM '
        "parameter store is configured"
    ]


# --- strToBool, bref, unknown sources --------------------------------------------------------


def test_str_to_bool() -> None:
    custom = _custom(
        "  a: ${strToBool(true)}\n"
        "  b: ${strToBool(0)}\n"
        "  c: ${strToBool(${env:FLAG})}\n"
        "  d: ${strToBool(' FALSE ')}\n",
        env={"FLAG": "1"},
    )

    assert custom == {"a": True, "b": False, "c": True, "d": False}
    assert _problems("service: s\ncustom:\n  a: ${strToBool(yes)}\n") == [
        'serverless.yml:3: Cannot resolve variable at "custom.a": Invalid "strToBool" input: '
        'Expected either "true", "false", "0", or "1". Received: yes'
    ]


def test_bref_layers_become_lamina_runtime_markers() -> None:
    custom = _custom(
        "  a: ${bref:layer.php-82}\n"
        "  b: ${bref:layer.php-73-fpm}\n"
        "  c: ${bref:layer.console}\n"
        "  d: ${bref:layer.arm-php-83}\n"
    )

    assert custom == {
        "a": "arn:lamina:runtime:php-82",
        "b": "arn:lamina:runtime:php-73-fpm",
        "c": "arn:lamina:runtime:console",
        "d": "arn:lamina:runtime:arm-php-83",
    }
    assert _problems("service: s\ncustom:\n  a: ${bref:layer.php-99-cgi}\n") == [
        'serverless.yml:3: Cannot resolve variable at "custom.a": Unknown Bref layer named '
        '"php-99-cgi"'
    ]


def test_unknown_sources_are_named() -> None:
    assert _problems("service: s\ncustom:\n  a: ${cf:stack.output}\n") == [
        'serverless.yml:3: Cannot resolve variable at "custom.a": Unknown variable source "cf" '
        "(Lamina has aws, bref, env, file, opt, param, self, sls, ssm, strToBool)"
    ]


# --- types, strings, escapes -----------------------------------------------------------------


def test_whole_values_keep_their_type_and_strings_are_stringified() -> None:
    custom = _custom(
        "  number: ${opt:memory, 512}\n"
        "  list: ${self:custom.source.list}\n"
        "  joined: size-${opt:memory, 512}-${opt:flag, true}-${opt:ratio, 1.5}\n"
        "  source:\n    list: [1, 2]\n"
    )

    assert custom["number"] == 512
    assert custom["list"] == [1, 2]
    assert custom["joined"] == "size-512-true-1.5"


def test_non_scalars_inside_strings_are_refused() -> None:
    assert _problems("service: s\ncustom:\n  a: x-${self:custom.b}\n  b: [1]\n") == [
        'serverless.yml:3: Cannot resolve variable at "custom.a": String value consist of '
        "variable which resolve with non-string value"
    ]


def test_escapes_and_foreign_variables_stay_as_text() -> None:
    custom = _custom(
        "  escaped: '\\${self:service}'\n"
        "  sub: '${AWS::StackName}-${self:service}'\n"
        "  windows: 'C:\\temp'\n"
    )

    assert custom == {
        "escaped": "${self:service}",
        "sub": "${AWS::StackName}-shop",
        "windows": "C:\\temp",
    }


def test_keys_are_never_resolved() -> None:
    assert _custom("  ${self:service}: 1\n") == {"${self:service}": 1}


def test_text_from_the_environment_is_resolved_again() -> None:
    assert _custom("  a: ${env:REF}\n", env={"REF": "${self:service}"}) == {"a": "shop"}
    assert _problems("service: s\ncustom:\n  a: ${env:LOOP}\n", env={"LOOP": "${env:LOOP}"}) == [
        'serverless.yml:3: Cannot resolve variable at "custom.a": Excessive property variables '
        "nest depth"
    ]


# --- cycles and reporting --------------------------------------------------------------------


def test_cycles_are_reported() -> None:
    text = """\
service: shop
custom:
  a: ${self:custom.b}
  b: ${self:custom.a}
  c: ${self:custom.c}
  d:
    e: ${self:custom.d}
"""
    assert _problems(text) == [
        'serverless.yml:4: Circular reference among "custom.b" and "custom.a" properties',
        'serverless.yml:5: Circular reference. "custom.c" refers to itself',
        'serverless.yml:7: Circular reference. "custom.d.e" refers to itself',
    ]
    assert _problems("service: shop\ncustom:\n  all: ${self:}\n") == [
        'serverless.yml:3: Circular reference. "custom.all" refers to itself'
    ]


def test_every_failure_is_reported_once_in_file_order() -> None:
    text = """\
service: shop
provider:
  name: aws
  environment:
    A: ${env:A}
    B: ${self:provider.environment.A}-b
    C: ${opt:c}
"""
    assert _problems(text) == [
        'serverless.yml:5: Cannot resolve variable at "provider.environment.A": Value not found '
        'at "env" source',
        'serverless.yml:7: Cannot resolve variable at "provider.environment.C": Value not found '
        'at "opt" source',
    ]


def test_only_some_paths_can_be_resolved() -> None:
    text = """\
service: ${self:custom.name}
provider:
  stage: ${opt:stage, 'dev'}
  environment:
    TOKEN: ${ssm:/never/asked}
custom:
  name: shop
"""
    document = resolve(load_document(text), Sources(), only=[("service",), ("provider", "stage")])

    assert not document.resolved
    assert document.root["service"] == "shop"
    assert document.root["provider"]["stage"] == "dev"
    assert document.root["provider"]["environment"]["TOKEN"] == "${ssm:/never/asked}"


# --- .env files ------------------------------------------------------------------------------


def test_parse_dotenv() -> None:
    text = """\
# comment
export A=1
B = two words # a comment
C='single ${A} quoted'
D="double\\nquoted ${A}"
E=${A}-$B-${MISSING:-fallback}
F=\\$A
G=
"""
    assert parse_dotenv(text, {"B": "from-env"}) == {
        "A": "1",
        "B": "two words",
        "C": "single ${A} quoted",
        "D": "double\nquoted 1",
        "E": "1-from-env-fallback",
        "F": "$A",
        "G": "",
    }
