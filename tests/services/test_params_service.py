"""ParameterService on a real SQLite file and key file in a temporary home, with a fake clock."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from lamina.core.clock import FakeClock
from lamina.core.params import (
    InvalidNextToken,
    ParameterFilter,
    ParameterNotFound,
    ParameterVersionNotFound,
    PutParameterRequest,
    SecretUnavailable,
    ValidationException,
)
from lamina.services.params import ParameterService
from lamina.services.secrets import AesGcmCipher
from lamina.store.params import SqliteParameterStore
from lamina.store.sqlite import SqliteStore

SECRET = "s3cr3t-bot-token"


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "lamina.db")
    yield store
    store.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_714_557_600.25)


@pytest.fixture
def service(sqlite: SqliteStore, tmp_path: Path, clock: FakeClock) -> ParameterService:
    return ParameterService(SqliteParameterStore(sqlite), AesGcmCipher.for_home(tmp_path), clock)


def put(
    service: ParameterService, name: str, value: str, type: str | None = "String", **kw: object
) -> int:
    request = PutParameterRequest(name, value, type, **kw)  # type: ignore[arg-type]
    return service.put(request).version


def test_put_returns_the_new_version_stamped_by_the_clock(
    service: ParameterService, clock: FakeClock
) -> None:
    assert put(service, "/app/url", "http://a") == 1
    clock.advance(5)
    assert put(service, "/app/url", "http://b", None, overwrite=True) == 2
    got = service.get("/app/url")
    assert (got.value, got.version, got.last_modified) == ("http://b", 2, 1_714_557_605.25)


def test_names_are_trimmed_on_the_way_in(service: ParameterService) -> None:
    put(service, " /app/url ", "x")
    assert service.get("/app/url").name == "/app/url"


def test_secure_strings_are_sealed_in_the_database(
    service: ParameterService, sqlite: SqliteStore
) -> None:
    put(service, "/bot/token", SECRET, "SecureString")

    with sqlite.transaction(write=False) as conn:
        (stored,) = conn.execute("SELECT value FROM parameter_versions").fetchone()
    assert SECRET.encode() not in stored
    hidden = service.get("/bot/token")
    assert hidden.value == base64.b64encode(stored).decode()
    assert service.get("/bot/token", with_decryption=True).value == SECRET
    for db_file in sqlite.path.parent.glob("lamina.db*"):  # the database and its WAL
        assert SECRET.encode() not in db_file.read_bytes()


def test_an_overwrite_without_type_keeps_a_secure_string_sealed(
    service: ParameterService, sqlite: SqliteStore
) -> None:
    put(service, "/bot/token", "first", "SecureString", key_id="alias/bot")
    put(service, "/bot/token", SECRET, None, overwrite=True)

    got = service.get("/bot/token", with_decryption=True)
    assert (got.type, got.value, got.key_id, got.version) == (
        "SecureString",
        SECRET,
        "alias/bot",
        2,
    )
    with sqlite.transaction(write=False) as conn:
        rows = conn.execute("SELECT value FROM parameter_versions").fetchall()
    assert all(SECRET.encode() not in bytes(r[0]) for r in rows)


def test_a_sealed_value_moved_to_another_row_does_not_open(
    service: ParameterService, sqlite: SqliteStore
) -> None:
    put(service, "/a", SECRET, "SecureString")
    put(service, "/b", "other", "SecureString")
    with sqlite.transaction() as conn:
        conn.execute(
            "UPDATE parameter_versions SET value = "
            "(SELECT value FROM parameter_versions WHERE name = '/a') WHERE name = '/b'"
        )
    with pytest.raises(SecretUnavailable, match="SecureString /b") as caught:
        service.get("/b", with_decryption=True)
    assert caught.value.status == 500 and SECRET not in caught.value.message


def test_a_replaced_key_file_makes_secure_strings_unavailable(
    service: ParameterService, sqlite: SqliteStore, tmp_path: Path, clock: FakeClock
) -> None:
    put(service, "/a", SECRET, "SecureString")
    other = ParameterService(
        SqliteParameterStore(sqlite), AesGcmCipher.for_home(tmp_path / "elsewhere"), clock
    )
    with pytest.raises(SecretUnavailable, match=r"keys/parameters\.key replaced"):
        other.get("/a", with_decryption=True)
    assert other.get("/a").type == "SecureString"  # without decryption it still answers


def test_get_by_version_label_and_arn(service: ParameterService) -> None:
    put(service, "/app/url", "one")
    put(service, "/app/url", "two", None, overwrite=True)
    service.label("/app/url", ["live"], version=1)

    assert service.get("/app/url:1").value == "one"
    assert service.get("/app/url:1").selector == ":1"
    assert service.get("/app/url:live").value == "one"
    arn = "arn:aws:ssm:us-east-1:000000000000:parameter/app/url"
    assert service.get(arn).value == "two"


def test_missing_parameter_versus_missing_version(service: ParameterService) -> None:
    put(service, "/app/url", "one")
    with pytest.raises(ParameterNotFound, match=r"Parameter /nope not found\."):
        service.get("/nope")
    with pytest.raises(ParameterNotFound):
        service.get("/nope:3")
    with pytest.raises(ParameterVersionNotFound, match="/app/url has no version 3"):
        service.get("/app/url:3")
    with pytest.raises(ParameterVersionNotFound, match="no version labelled 'x'"):
        service.get("/app/url:x")


def test_get_many_sorts_found_and_reports_the_rest_as_given(service: ParameterService) -> None:
    put(service, "/b", "2")
    put(service, "/a", "1")
    put(service, "/s", SECRET, "SecureString")

    found, invalid = service.get_many(
        ["/s", "/b", "/missing", "/a", "/b", "/a:9", "bad name:"], with_decryption=True
    )

    assert [(p.name, p.value) for p in found] == [("/a", "1"), ("/b", "2"), ("/s", SECRET)]
    assert invalid == ["/missing", "/a:9", "bad name:"]


def test_get_many_takes_1_to_10_names(service: ParameterService) -> None:
    for names in ([], [f"/n{i}" for i in range(11)]):
        with pytest.raises(ValidationException, match=r"at 'names'.*between 1 and 10"):
            service.get_many(names)


def test_by_path_pages_with_an_opaque_token(service: ParameterService) -> None:
    for i in range(7):
        put(service, f"/app/p{i}", str(i))
    put(service, "/app/deeper/x", "x")
    put(service, "/app/s", SECRET, "SecureString")

    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = service.get_by_path(
            "/app/", recursive=True, with_decryption=True, max_items=3, next_token=token
        )
        seen += [p.value for p in page.items]
        pages += 1
        if page.next_token is None:
            break
        assert "/app" not in page.next_token  # opaque, not a name in clear
        token = page.next_token
    assert seen == ["x", *[str(i) for i in range(7)], SECRET]
    assert pages == 3


def test_by_path_rejects_bad_input(service: ParameterService) -> None:
    with pytest.raises(ValidationException, match="Path = 'app'"):
        service.get_by_path("app")
    with pytest.raises(ValidationException, match="Value '11' at 'maxResults'"):
        service.get_by_path("/app", max_items=11)
    with pytest.raises(InvalidNextToken):
        service.get_by_path("/app", next_token="garbage")
    for i in range(3):
        put(service, f"/d{i}", "v")
    describe_token = service.describe(max_items=1).next_token
    assert describe_token is not None
    with pytest.raises(InvalidNextToken):
        service.get_by_path("/", next_token=describe_token)


def test_by_path_filters(service: ParameterService) -> None:
    put(service, "/app/a", "a")
    put(service, "/app/s", SECRET, "SecureString")
    only = [ParameterFilter("Type", ("SecureString",))]
    assert [p.name for p in service.get_by_path("/app", filters=only).items] == ["/app/s"]


def test_describe_never_opens_values(service: ParameterService) -> None:
    put(service, "/s", SECRET, "SecureString", description="the bot's token")
    [meta] = service.describe([ParameterFilter("Name", ("/s",))]).items
    assert (meta.name, meta.description, meta.key_id) == ("/s", "the bot's token", "alias/aws/ssm")
    assert SECRET.encode() not in meta.value


def test_describe_pages(service: ParameterService) -> None:
    for name in "abcde":
        put(service, f"/{name}", name)
    first = service.describe(max_items=2)
    second = service.describe(max_items=2, next_token=first.next_token)
    third = service.describe(max_items=2, next_token=second.next_token)
    assert [[v.name for v in p.items] for p in (first, second, third)] == [
        ["/a", "/b"],
        ["/c", "/d"],
        ["/e"],
    ]
    assert third.next_token is None


def test_history_pages_oldest_first(service: ParameterService) -> None:
    put(service, "/s", "v1", "SecureString")
    for i in range(2, 5):
        put(service, "/s", f"v{i}", None, overwrite=True)

    first = service.history("/s", with_decryption=True, max_items=3)
    second = service.history("/s", with_decryption=True, next_token=first.next_token)

    assert [p.value for p in first.items] == ["v1", "v2", "v3"]
    assert [p.value for p in second.items] == ["v4"]
    assert second.next_token is None
    with pytest.raises(ParameterNotFound):
        service.history("/nope")


def test_label_reports_invalid_labels(service: ParameterService) -> None:
    put(service, "/a", "1")
    assert service.label("/a", ["prod", "1st", "aws-x"]) == (1, ["1st", "aws-x"])
    with pytest.raises(ParameterNotFound):
        service.label("/nope", ["prod"])
    with pytest.raises(ValidationException, match="at 'labels'"):
        service.label("/a", [f"l{i}" for i in range(11)])


def test_delete_and_delete_many(service: ParameterService) -> None:
    put(service, "/a", "1")
    put(service, "/b", "2")
    service.delete("/a")
    with pytest.raises(ParameterNotFound, match="/a not found"):
        service.delete("/a")
    assert service.delete_many(["/b", "/a"]) == (["/b"], ["/a"])


def test_get_value_for_ssm_variables(service: ParameterService) -> None:
    put(service, "/app/name", "shop")
    put(service, "/app/hosts", "a.example,b.example", "StringList")
    put(service, "/app/token", SECRET, "SecureString")

    assert service.get_value("/app/name") == "shop"
    assert service.get_value("/app/hosts") == ["a.example", "b.example"]
    assert service.get_value("/app/token") == SECRET
    assert service.get_value("/app/token", with_decryption=False) != SECRET
    assert service.get_value("/app/missing") is None
    assert service.get_value("/app/name:1") == "shop"
    with pytest.raises(ParameterVersionNotFound):
        service.get_value("/app/name:2")
