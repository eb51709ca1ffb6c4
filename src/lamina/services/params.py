"""`ParameterService`: the parameter store's use cases, shared by the SSM API, the `lamina
params` CLI (through that API) and `${ssm:...}` resolution at deploy time.

SecureString values are sealed before they reach the store and opened only when a caller
asks for decryption; a sealed value is bound to its parameter's name and version.
Methods are synchronous (SQLite and AES are quick); the HTTP edge runs them off the loop.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import replace

from lamina.core.clock import Clock
from lamina.core.params import (
    BY_PATH_FILTER_KEYS,
    DESCRIBE_FILTER_KEYS,
    MAX_LABELS_PER_CALL,
    MAX_NAMES_PER_CALL,
    SECURE_STRING,
    Cipher,
    Page,
    Parameter,
    ParameterFilter,
    ParameterNotFound,
    ParameterRepository,
    ParameterVersion,
    ParameterVersionNotFound,
    PutParameterRequest,
    SealedValueError,
    SecretUnavailable,
    Selector,
    ValidationException,
    check_filters,
    decode_token,
    encode_token,
    is_valid_label,
    max_results,
    next_version,
    parameter_name,
    parameter_path,
    parse_reference,
)


class ParameterService:
    def __init__(self, store: ParameterRepository, cipher: Cipher, clock: Clock) -> None:
        self._store = store
        self._cipher = cipher
        self._clock = clock

    def __repr__(self) -> str:
        return f"<ParameterService {self._store!r} {self._cipher!r}>"

    # writing

    def put(self, request: PutParameterRequest) -> ParameterVersion:
        """PutParameter; returns the new version (its value sealed if a SecureString)."""
        name = parameter_name(request.name)
        request = replace(request, name=name)

        def build(current: ParameterVersion | None) -> ParameterVersion:
            new = next_version(request, current, self._clock.time())
            if new.type != SECURE_STRING:
                return new
            return replace(new, value=self._cipher.seal(new.value, _context(new)))

        return self._store.put(name, build)

    def delete(self, name: str) -> None:
        if not self._store.delete(name.strip()):
            raise _not_found(name)

    def delete_many(self, names: Sequence[str]) -> tuple[list[str], list[str]]:
        """DeleteParameters: (deleted names, names that did not exist)."""
        _check_count("names", names, MAX_NAMES_PER_CALL)
        deleted = self._store.delete_many([n.strip() for n in names])
        gone = set(deleted)
        return deleted, [n for n in dict.fromkeys(names) if n.strip() not in gone]

    def label(
        self, name: str, labels: Sequence[str], version: int | None = None
    ) -> tuple[int, list[str]]:
        """LabelParameterVersion: (the labelled version, the labels refused as invalid)."""
        _check_count("labels", labels, MAX_LABELS_PER_CALL)
        valid = [label for label in labels if is_valid_label(label)]
        labelled = self._store.label(name.strip(), version, valid)
        if labelled is None:
            raise _not_found(name)
        return labelled, [label for label in labels if not is_valid_label(label)]

    # reading

    def get(self, reference: str, *, with_decryption: bool = False) -> Parameter:
        """GetParameter: `reference` is a name, `name:version`, `name:label` or an ARN."""
        name, selector = parse_reference(reference)
        found = self._store.get(name, selector)
        if found is None:
            if selector is not None and self._store.get(name) is not None:
                raise ParameterVersionNotFound(
                    f"Parameter {name} has no version {selector.version} (only the newest "
                    "100 are kept)"
                    if selector.version is not None
                    else f"Parameter {name} has no version labelled {selector.label!r}"
                )
            raise _not_found(name)
        return self._view(found, with_decryption, selector)

    def get_many(
        self, references: Sequence[str], *, with_decryption: bool = False
    ) -> tuple[list[Parameter], list[str]]:
        """GetParameters: (parameters found, by name; references not found, as given)."""
        _check_count("names", references, MAX_NAMES_PER_CALL)
        unique = list(dict.fromkeys(references))
        parsed: list[tuple[str, Selector | None]] = []
        for reference in unique:
            try:
                parsed.append(parse_reference(reference))
            except ValidationException:
                parsed.append(("", None))  # cannot name a parameter: reported as invalid
        found = self._store.get_many(parsed)
        parameters = [
            self._view(version, with_decryption, selector)
            for version, (_, selector) in zip(found, parsed, strict=True)
            if version is not None
        ]
        invalid = [ref for ref, version in zip(unique, found, strict=True) if version is None]
        return sorted(parameters, key=lambda p: (p.name, p.version)), invalid

    def get_by_path(
        self,
        path: str,
        *,
        recursive: bool = False,
        filters: Sequence[ParameterFilter] = (),
        with_decryption: bool = False,
        max_items: int | None = None,
        next_token: str | None = None,
    ) -> Page[Parameter]:
        path = parameter_path(path)
        checked = check_filters(filters, BY_PATH_FILTER_KEYS)
        limit = max_results(max_items, "maxResults", 10, 10)
        after = _name_token("path", next_token)
        rows = self._store.by_path(
            path, recursive=recursive, filters=checked, after=after, limit=limit + 1
        )
        items = tuple(self._view(row, with_decryption) for row in rows[:limit])
        token = encode_token("path", items[-1].name) if len(rows) > limit else None
        return Page(items, token)

    def describe(
        self,
        filters: Sequence[ParameterFilter] = (),
        *,
        max_items: int | None = None,
        next_token: str | None = None,
    ) -> Page[ParameterVersion]:
        """DescribeParameters: the newest version of each parameter, values left sealed."""
        checked = check_filters(filters, DESCRIBE_FILTER_KEYS)
        limit = max_results(max_items, "maxResults", 50, 10)
        after = _name_token("describe", next_token)
        rows = self._store.describe(checked, after=after, limit=limit + 1)
        token = encode_token("describe", rows[limit - 1].name) if len(rows) > limit else None
        return Page(tuple(rows[:limit]), token)

    def history(
        self,
        name: str,
        *,
        with_decryption: bool = False,
        max_items: int | None = None,
        next_token: str | None = None,
    ) -> Page[Parameter]:
        """GetParameterHistory: every kept version, oldest first."""
        limit = max_results(max_items, "maxResults", 50, 50)
        after = decode_token("history", next_token, int) if next_token else 0
        versions = self._store.history(name.strip())
        if not versions:
            raise _not_found(name)
        rest = [v for v in versions if v.version > after]
        items = tuple(self._view(v, with_decryption) for v in rest[:limit])
        token = encode_token("history", items[-1].version) if len(rest) > limit else None
        return Page(items, token)

    def get_value(self, name: str, with_decryption: bool = True) -> str | list[str] | None:
        """For `${ssm:name}`: a String's text, a StringList's items, a SecureString's text
        (its sealed base64 without decryption); None if there is no such parameter, which
        lets the variable fall back. A missing version or label still raises."""
        try:
            parameter = self.get(name, with_decryption=with_decryption)
        except ParameterNotFound:
            return None
        return parameter.values if parameter.type == "StringList" else parameter.value

    def _view(
        self, stored: ParameterVersion, with_decryption: bool, selector: Selector | None = None
    ) -> Parameter:
        if stored.type != SECURE_STRING:
            value = stored.value.decode()
        elif with_decryption:
            value = self._unseal(stored)
        else:
            value = base64.b64encode(stored.value).decode()
        return Parameter(
            name=stored.name,
            version=stored.version,
            type=stored.type,
            value=value,
            last_modified=stored.last_modified,
            description=stored.description,
            key_id=stored.key_id,
            allowed_pattern=stored.allowed_pattern,
            labels=stored.labels,
            tier=stored.tier,
            data_type=stored.data_type,
            selector=str(selector) if selector is not None else None,
        )

    def _unseal(self, stored: ParameterVersion) -> str:
        try:
            return self._cipher.unseal(stored.value, _context(stored)).decode()
        except SealedValueError:
            raise SecretUnavailable(
                f"SecureString {stored.name} (version {stored.version}) cannot be decrypted "
                "with this Lamina's key file: was keys/parameters.key replaced?"
            ) from None


def _context(version: ParameterVersion) -> bytes:
    # Binds a sealed value to its row: it cannot be replayed as another parameter or version.
    return f"lamina/ssm/{version.name}\0{version.version}".encode()


def _name_token(kind: str, token: str | None) -> str | None:
    return decode_token(kind, token, str) if token else None


def _check_count(field: str, items: Sequence[str], limit: int) -> None:
    if not 1 <= len(items) <= limit:
        raise ValidationException(
            f"1 validation error detected: Value '{list(items)}' at '{field}' failed to satisfy "
            f"constraint: Member must have length between 1 and {limit}"
        )


def _not_found(name: str) -> ParameterNotFound:
    return ParameterNotFound(f"Parameter {name.strip()} not found.")
