from __future__ import annotations

import ast
import inspect
from dataclasses import replace

import pytest

import lamina.core.params
from lamina.core.models import Account
from lamina.core.params import (
    DEFAULT_KEY_ID,
    HierarchyLevelLimitExceededException,
    InvalidAllowedPatternException,
    InvalidFilterKey,
    InvalidFilterOption,
    InvalidFilterValue,
    InvalidNextToken,
    Parameter,
    ParameterAlreadyExists,
    ParameterError,
    ParameterFilter,
    ParameterPatternMismatchException,
    ParameterVersion,
    ParameterVersionLabelLimitExceeded,
    ParameterVersionNotFound,
    PutParameterRequest,
    Selector,
    UnsupportedParameterType,
    ValidationException,
    attach_labels,
    check_filters,
    decode_token,
    encode_token,
    is_valid_label,
    max_results,
    next_version,
    parameter_arn,
    parameter_name,
    parameter_path,
    parse_reference,
)

NOW = 1_700_000_000.5
PURE_MODULES = {
    *("__future__", "base64", "binascii", "collections", "dataclasses", "json", "re", "typing")
}
SECRET = "hunter2-very-secret"


def _put(name: str = "/app/token", value: str = "v", **fields: object) -> PutParameterRequest:
    return PutParameterRequest(name=name, value=value, **fields)  # type: ignore[arg-type]


def _stored(**fields: object) -> ParameterVersion:
    base = ParameterVersion(
        name="/app/token", version=3, type="String", value=b"old", last_modified=1.0
    )
    return replace(base, **fields)  # type: ignore[arg-type]


# names


@pytest.mark.parametrize(
    "name",
    ["db-url", "/app/prod/db_url.v2", "A.b-c_D", "/x", "/" + "/".join(["l"] * 15), "a" * 2048],
)
def test_valid_names(name: str) -> None:
    assert parameter_name(name) == name


def test_names_are_trimmed_as_aws_trims_them() -> None:
    assert parameter_name("  /app/token \n") == "/app/token"


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("", "1-2048 characters"),
        ("a" * 2049, "1-2048 characters"),
        ("my param", "no spaces"),
        ("/app/tok$n", "letters, digits"),
        ("app/token", "must begin with '/'"),
        ("/app//token", "must not be empty"),
        ("/app/", "must not be empty"),
        ("awsKey", "reserved"),
        ("SSM-thing", "reserved"),
        ("/aws/service/x", "reserved"),
        ("/Ssm", "reserved"),
    ],
)
def test_invalid_names_name_the_value_and_rule(name: str, rule: str) -> None:
    with pytest.raises(ValidationException) as caught:
        parameter_name(name)
    assert rule in caught.value.message
    assert repr(name.strip())[:40] in caught.value.message


def test_more_than_15_levels_is_its_own_error() -> None:
    name = "/" + "/".join(f"l{i}" for i in range(16))
    with pytest.raises(HierarchyLevelLimitExceededException, match=r"16 levels; .* at most 15"):
        parameter_name(name)


def test_errors_are_user_faults_with_aws_codes_and_status_400() -> None:
    error = ParameterAlreadyExists("x")
    assert isinstance(error, ParameterError)
    assert (error.error_type, error.status, error.fault) == ("ParameterAlreadyExists", 400, "User")


# references


@pytest.mark.parametrize(
    ("reference", "name", "selector"),
    [
        ("/app/token", "/app/token", None),
        ("/app/token:3", "/app/token", Selector(version=3)),
        ("/app/token:prod", "/app/token", Selector(label="prod")),
        ("arn:aws:ssm:us-east-1:000000000000:parameter/app/token", "/app/token", None),
        ("arn:aws:ssm:eu-west-1:123:parameter/flat", "flat", None),
        ("arn:aws:ssm:us-east-1:1:parameter/app/token:2", "/app/token", Selector(version=2)),
    ],
)
def test_parse_reference(reference: str, name: str, selector: Selector | None) -> None:
    assert parse_reference(reference) == (name, selector)


@pytest.mark.parametrize("reference", ["/app/token:", "/app/token:a:b"])
def test_malformed_selectors(reference: str) -> None:
    with pytest.raises(ValidationException, match="selector"):
        parse_reference(reference)


def test_selector_text() -> None:
    assert str(Selector(version=3)) == ":3"
    assert str(Selector(label="prod")) == ":prod"


def test_paths() -> None:
    assert parameter_path("/") == "/"
    assert parameter_path("/app/") == "/app"
    with pytest.raises(ValidationException, match="Path = 'app': must begin with '/'"):
        parameter_path("app")
    with pytest.raises(ValidationException, match="levels"):
        parameter_path("/a//b")


def test_arn_drops_the_leading_slash() -> None:
    account = Account("eu-west-1", "123456789012")
    assert parameter_arn(account, "/app/token") == (
        "arn:aws:ssm:eu-west-1:123456789012:parameter/app/token"
    )
    assert parameter_arn(account, "flat") == "arn:aws:ssm:eu-west-1:123456789012:parameter/flat"


def test_string_list_values() -> None:
    listed = Parameter("n", 1, "StringList", "a,b,,c", 0.0)
    assert listed.values == ["a", "b", "", "c"]
    assert Parameter("n", 1, "String", "a,b", 0.0).values == ["a,b"]


# putting a version


def test_a_new_parameter_starts_at_version_1() -> None:
    new = next_version(_put(type="String", description="d"), None, NOW)
    assert new == ParameterVersion(
        name="/app/token",
        version=1,
        type="String",
        value=b"v",
        last_modified=NOW,
        description="d",
    )


def test_a_new_parameter_needs_a_type() -> None:
    with pytest.raises(ValidationException, match="Type = None: is required when creating"):
        next_version(_put(), None, NOW)


def test_unknown_types_are_unsupported() -> None:
    with pytest.raises(UnsupportedParameterType, match="Type = 'Secure'"):
        next_version(_put(type="Secure"), None, NOW)


def test_an_existing_parameter_needs_overwrite() -> None:
    with pytest.raises(ParameterAlreadyExists, match="/app/token already exists"):
        next_version(_put(type="String"), _stored(), NOW)


def test_overwrite_adds_a_version_and_keeps_unset_settings() -> None:
    current = _stored(
        type="SecureString",
        description="the token",
        key_id="alias/mine",
        allowed_pattern="[a-z]+",
    )
    new = next_version(_put(value="abc", overwrite=True), current, NOW)
    assert (new.version, new.type, new.value) == (4, "SecureString", b"abc")
    assert (new.description, new.key_id, new.allowed_pattern) == (
        "the token",
        "alias/mine",
        "[a-z]+",
    )


def test_overwrite_may_change_the_type_and_settings() -> None:
    current = _stored(type="SecureString", key_id="alias/mine", allowed_pattern="x")
    new = next_version(
        _put(value="a,b", type="StringList", overwrite=True, allowed_pattern=""), current, NOW
    )
    assert (new.type, new.key_id, new.allowed_pattern) == ("StringList", None, None)


def test_secure_strings_default_to_the_aws_managed_key() -> None:
    assert next_version(_put(type="SecureString"), None, NOW).key_id == DEFAULT_KEY_ID
    assert next_version(_put(type="SecureString", key_id="k"), None, NOW).key_id == "k"


def test_key_id_is_only_for_secure_strings() -> None:
    with pytest.raises(ValidationException, match="KeyId = 'k': is only for SecureString"):
        next_version(_put(type="String", key_id="k"), None, NOW)


@pytest.mark.parametrize("value", ["", "x" * 4097])
def test_value_length_errors_never_show_the_value(value: str) -> None:
    with pytest.raises(ValidationException, match="1-4096 characters") as caught:
        next_version(_put(value=value, type="SecureString"), None, NOW)
    if value:
        assert value not in caught.value.message


def test_a_value_of_4096_characters_fits_the_standard_tier() -> None:
    assert next_version(_put(value="x" * 4096, type="String"), None, NOW).tier == "Standard"


def test_allowed_pattern_must_match_the_whole_value_and_hides_it() -> None:
    with pytest.raises(ParameterPatternMismatchException, match=r"AllowedPattern '\\\\d\+'") as e:
        next_version(_put(value=SECRET, type="SecureString", allowed_pattern=r"\d+"), None, NOW)
    assert SECRET not in e.value.message
    with pytest.raises(ParameterPatternMismatchException):
        next_version(_put(value="12a", type="String", allowed_pattern=r"\d+"), None, NOW)
    assert next_version(_put(value="12", type="String", allowed_pattern=r"\d+"), None, NOW)


def test_a_kept_pattern_applies_to_an_overwrite() -> None:
    with pytest.raises(ParameterPatternMismatchException):
        next_version(_put(value="abc", overwrite=True), _stored(allowed_pattern=r"\d+"), NOW)


def test_invalid_allowed_pattern() -> None:
    with pytest.raises(InvalidAllowedPatternException, match=r"AllowedPattern = '\(': not a"):
        next_version(_put(type="String", allowed_pattern="("), None, NOW)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tier": "Advanced"}, "Standard-tier parameters only"),
        ({"tier": "Premium"}, "Tier = 'Premium': must be Standard, Advanced or"),
        ({"data_type": "aws:ec2:image"}, "DataType = 'aws:ec2:image': must be 'text'"),
        ({"policies": "[]"}, "Advanced tier"),
        ({"description": "d" * 1025}, "over 1024 characters"),
        ({"tags": (("k", "v"),), "overwrite": True}, "Tags cannot be given with Overwrite"),
    ],
)
def test_settings_lamina_refuses(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationException, match=message):
        next_version(_put(type="String", **fields), None, NOW)


def test_intelligent_tiering_picks_standard() -> None:
    assert next_version(_put(type="String", tier="Intelligent-Tiering"), None, NOW).tier == (
        "Standard"
    )


# labels


@pytest.mark.parametrize(
    ("label", "valid"),
    [
        ("prod", True),
        ("v1.2_rc-3", True),
        ("1st", False),
        ("awsish", False),
        ("SSMx", False),
        ("with/slash", False),
        ("", False),
        ("l" * 101, False),
    ],
)
def test_label_rules(label: str, valid: bool) -> None:
    assert is_valid_label(label) is valid


def test_a_label_moves_to_the_version_it_is_attached_to() -> None:
    result = attach_labels("/p", {1: ("prod", "a"), 2: ()}, 2, ["prod", "b"])
    assert result == {1: ("a",), 2: ("prod", "b")}


def test_at_most_10_labels_per_version() -> None:
    have = tuple(f"l{i}" for i in range(9))
    assert len(attach_labels("/p", {1: have}, 1, ["x"])[1]) == 10
    with pytest.raises(ParameterVersionLabelLimitExceeded, match="11 labels"):
        attach_labels("/p", {1: have}, 1, ["x", "y"])


def test_labelling_a_missing_version() -> None:
    with pytest.raises(ParameterVersionNotFound, match="Version 7 of parameter /p"):
        attach_labels("/p", {1: ()}, 7, ["x"])


# filters, pages


def test_filters_get_default_options() -> None:
    checked = check_filters(
        [ParameterFilter("Path", ("/a",), ""), ParameterFilter("Type", ("String",), "")],
        ["Path", "Type"],
    )
    assert [f.option for f in checked] == ["OneLevel", "Equals"]


def test_filter_keys_an_operation_does_not_take() -> None:
    with pytest.raises(InvalidFilterKey, match=r"'Name' is not valid.*\[Type, KeyId, Label\]"):
        check_filters([ParameterFilter("Name", ("x",))], ["Type", "KeyId", "Label"])
    with pytest.raises(InvalidFilterKey, match="stores no tags"):
        check_filters([ParameterFilter("tag:env", ("x",))], ["Type"])


def test_filter_options_and_values() -> None:
    with pytest.raises(InvalidFilterOption, match="'BeginsWith' is not valid for key Type"):
        check_filters([ParameterFilter("Type", ("String",), "BeginsWith")], ["Type"])
    with pytest.raises(InvalidFilterValue, match="'Secret' is not valid for key Type"):
        check_filters([ParameterFilter("Type", ("Secret",))], ["Type"])
    with pytest.raises(InvalidFilterValue, match="Path must begin with '/'"):
        check_filters([ParameterFilter("Path", ("app",))], ["Path"])
    with pytest.raises(InvalidFilterValue, match="1-50 values"):
        check_filters([ParameterFilter("Label", ())], ["Label"])


def test_tokens_round_trip_and_belong_to_one_listing() -> None:
    assert decode_token("path", encode_token("path", "/a/b"), str) == "/a/b"
    assert decode_token("history", encode_token("history", 7), int) == 7
    for kind, token, position in [
        ("describe", encode_token("path", "/a"), str),
        ("history", encode_token("history", "7"), int),
        ("path", "not a token!", str),
        ("path", "", str),
        ("path", "\u00e9", str),
    ]:
        with pytest.raises(InvalidNextToken, match="not a token this operation gave"):
            decode_token(kind, token, position)  # type: ignore[type-var]


def test_max_results() -> None:
    assert max_results(None, "maxResults", 10, 10) == 10
    assert max_results(1, "maxResults", 10, 10) == 1
    for bad in (0, 11):
        with pytest.raises(ValidationException, match=f"Value '{bad}' at 'maxResults'"):
            max_results(bad, "maxResults", 10, 10)


def test_the_model_does_no_io() -> None:
    tree = ast.parse(inspect.getsource(lamina.core.params))
    imported = {
        name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        )
    }
    assert {name.split(".")[0] for name in imported} <= PURE_MODULES | {"lamina"}
    assert all(name.startswith("lamina.core.") for name in imported if name.startswith("lamina"))
