"""Serverless Framework variables, `${source(params):address, fallback, ...}`, resolved in a
`Document` the way Serverless v3 resolves them (lib/configuration/variables).

Pure: the outside world (environment, `.env` files, files next to serverless.yml, CLI
options, the SSM parameter store) comes in through `Sources`, values and callables the CLI
provides, so tests pass plain data.

- A value that is exactly one variable takes the variable's type (a map, a list, a number);
  variables inside a longer string are stringified and must resolve to scalars.
- Sources are tried left to right; one without a value (null) hands over to the next. The
  last may be a literal: 'single' or "double" quoted, a number, true, false or null.
- Variables nest in params and addresses: `${file(./c.${opt:stage, 'dev'}.json):CREDS}`.
- `\\${` escapes a variable. `${AWS::Region}` and anything else whose source does not start
  with a lower-case letter stays as written, for CloudFormation's `Fn::Sub`.
- `${self:a.b}` resolves `a.b` (and everything under it) first; a cycle is an error.
- Text that env, opt or file sources return is resolved again (as Serverless does, at most 10
  levels deep); SSM values are not, deliberately: a secret is never read as configuration.
- Every failure is reported, each once, as
  `serverless.yml:12: Cannot resolve variable at "provider.environment.TOKEN": Value not
  found at "ssm" source`; a value depending on a failed one is not reported again.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from lamina.wire.serverless import (
    RUNTIME_LAYER_PREFIX,
    Document,
    Path,
    ServerlessConfigError,
    js_string,
    load_yaml,
)

MAX_NEST_DEPTH = 10  # Serverless's limit on values that resolve to more variables
MAX_TREE_DEPTH = 100  # deeper than any real file; stops a YAML alias that contains itself
DEFAULT_ACCOUNT_ID = "000000000000"
BREF_LAYER = re.compile(r"(?:arm-)?php-[0-9]{2}(?:-fpm)?|console")


# --- syntax ----------------------------------------------------------------------------------


class VariableSyntaxError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Literal:
    value: object


@dataclass(frozen=True, slots=True)
class Template:
    """Text that holds variables (positions relative to `text`): a param or an address."""

    text: str
    variables: tuple[Variable, ...]


@dataclass(frozen=True, slots=True)
class Reference:
    type: str
    params: tuple[Literal | Template, ...] | None = None
    address: Literal | Template | None = None


@dataclass(frozen=True, slots=True)
class Variable:
    start: int
    end: int
    sources: tuple[Reference | Literal, ...]


_LOWER = frozenset(string.ascii_lowercase)
_WORD = frozenset(string.ascii_letters + string.digits + ".")
_TYPE = re.compile(r"[a-z][a-zA-Z0-9]*")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?")


def parse(text: str) -> tuple[Variable, ...]:
    """The outermost variables of `text`, in order. Raises `VariableSyntaxError`."""
    return _Parser(text).top_level()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.n = len(text)

    def _error(self, what: str, index: int) -> VariableSyntaxError:
        return VariableSyntaxError(f'Invalid variable {what} at index {index} in "{self.text}"')

    def _unterminated(self) -> VariableSyntaxError:
        return VariableSyntaxError(f"Missing variable closing bracket in {self.text}")

    def _at(self, i: int) -> str:
        if i >= self.n:
            raise self._unterminated()
        return self.text[i]

    def _skip_spaces(self, i: int) -> int:
        while i < self.n and self.text[i] == " ":
            i += 1
        return i

    def top_level(self) -> tuple[Variable, ...]:
        found: list[Variable] = []
        i = 0
        while i < self.n:
            c = self.text[i]
            if c == "\\":
                i += 2
                continue
            if c == "$" and self.text.startswith("${", i):
                variable = self.variable(i, nested=False)
                if variable is not None:
                    found.append(variable)
                    i = variable.end
                    continue
            i += 1
        return tuple(found)

    def variable(self, start: int, *, nested: bool) -> Variable | None:
        """The variable at `start` (`${`), or None for text that only looks like one."""
        i = start + 2
        if i >= self.n or self.text[i] not in _LOWER:
            if nested:
                raise self._error("type", i)
            return None
        j = i
        while j < self.n and self.text[j] in _WORD:
            j += 1
        if j >= self.n and nested:
            raise self._unterminated()
        if j >= self.n or self.text[j] not in ":(":
            if nested:
                raise self._error("type", i)
            return None
        first = self.reference(self.text[i:j], j, foreign_ok=not nested)
        if first is None:
            return None
        sources: list[Reference | Literal] = [first[0]]
        k = first[1]
        while self._at(k) == ",":
            more, k = self.next_source(k + 1)
            sources.extend(more)
        return Variable(start, k + 1, tuple(sources))

    def reference(self, kind: str, i: int, *, foreign_ok: bool) -> tuple[Reference, int] | None:
        """A `type(params):address` source from its `:` or `(`; ends on `,` or `}`."""
        source = i - len(kind)
        params: tuple[Literal | Template, ...] | None = None
        if self.text[i] == "(":
            params, i = self.params(i + 1)
            i = self._skip_spaces(i)
            if self._at(i) in ",}":
                return Reference(kind, params), i
            if self.text[i] != ":":
                raise self._error("address", i)
        i = self._skip_spaces(i + 1)
        c = self._at(i)
        if c in ",}":
            return Reference(kind, params), i
        if c == ":":
            if params is None and foreign_ok:
                return None  # `${a::b}`: not a variable
            raise self._error("address", i)
        if c in "'\"":
            value, j = self.quoted(i)
            j = self._skip_spaces(j)
            if self._at(j) not in ",}":
                raise self._error("address", i)
            return Reference(kind, params, Literal(value)), j
        template, j = self.template(i, stops=",}", what="address", source=source)
        if not template.variables:
            return Reference(kind, params, Literal(template.text or None)), j
        return Reference(kind, params, template), j

    def params(self, i: int) -> tuple[tuple[Literal | Template, ...], int]:
        found: list[Literal | Template] = []
        while True:
            i = self._skip_spaces(i)
            c = self._at(i)
            if c == ")":
                return tuple(found), i + 1
            if c == ",":
                found.append(Literal(None))
                i += 1
                continue
            if c == "}":
                raise self._error("param", i)
            if c in "'\"":
                value, j = self.quoted(i)
                j = self._skip_spaces(j)
                found.append(Literal(value))
            else:
                template, j = self.template(i, stops=",)", what="param")
                if template.variables:
                    found.append(template)
                else:
                    found.append(Literal(self.literal(template.text, i, fallback=True)))
            if self._at(j) == ")":
                return tuple(found), j + 1
            if self.text[j] != ",":
                raise self._error("param", i)
            i = j + 1

    def template(
        self, i: int, *, stops: str, what: str, source: int | None = None
    ) -> tuple[Template, int]:
        """Text up to one of `stops`, with the variables nested in it."""
        start = i
        found: list[Variable] = []
        while True:
            c = self._at(i)
            if c in stops:
                break
            if c == "$" and self.text.startswith("${", i):
                variable = self.variable(i, nested=True)
                assert variable is not None  # nested: invalid syntax raises instead
                found.append(replace(variable, start=i - start, end=variable.end - start))
                i = variable.end
                continue
            if (what == "address" and c == ":") or (what == "param" and c == "}"):
                raise self._error(what, start if source is None else source)
            i += 1
        return Template(self.text[start:i].rstrip(), tuple(found)), i

    def next_source(self, i: int) -> tuple[list[Reference | Literal], int]:
        """A fallback after `,`: another source, a literal, or (beyond Serverless v3, as
        older files write it) a nested `${...}`. Ends on `,` or `}`."""
        i = self._skip_spaces(i)
        c = self._at(i)
        if c in _WORD:
            j = i
            while self._at(j) in _WORD or self.text[j] == " ":
                j += 1
            word = self.text[i:j].strip()
            if self.text[j] in ":(":
                if not _TYPE.fullmatch(word):
                    raise self._error("source", i)
                found = self.reference(word, j, foreign_ok=False)
                assert found is not None
                return [found[0]], found[1]
            if self.text[j] == "}":
                return [Literal(self.literal(word, i, fallback=False))], j
            raise self._error("source", i)
        if c in "'\"":
            value, j = self.quoted(i)
            j = self._skip_spaces(j)
            if self._at(j) != "}":
                raise self._error("source", i)
            return [Literal(value)], j
        if c == "$" and self.text.startswith("${", i):
            nested = self.variable(i, nested=True)
            assert nested is not None
            j = self._skip_spaces(nested.end)
            if self._at(j) not in ",}":
                raise self._error("source", i)
            return list(nested.sources), j
        raise self._error("source", i)

    def quoted(self, i: int) -> tuple[str, int]:
        quote = self.text[i]
        j = i + 1
        while self._at(j) != quote:
            j += 2 if quote == '"' and self.text[j] == "\\" else 1
        if quote == "'":
            return self.text[i + 1 : j], j + 1
        try:
            value = json.loads(self.text[i : j + 1])
        except ValueError as exc:
            raise VariableSyntaxError(
                f'Invalid string literal at index {i} in "{self.text}": {exc}'
            ) from None
        return str(value), j + 1

    def literal(self, word: str, index: int, *, fallback: bool) -> object:
        if word in ("true", "false"):
            return word == "true"
        if word == "null":
            return None
        if word.isdigit():
            return int(word)
        if _NUMBER.fullmatch(word):
            number = float(word)
            # JavaScript has one number type: `1.0` is the integer 1.
            return int(number) if number.is_integer() else number
        if fallback:
            return word
        raise VariableSyntaxError(
            f'Invalid literal source "{word}" at index {index} in "{self.text}"'
        )


# --- sources ---------------------------------------------------------------------------------


class VariableSourceError(Exception):
    """A source could not answer: a file that does not parse, the SSM API unreachable..."""


@dataclass(frozen=True, slots=True)
class SsmParameter:
    name: str
    type: str  # String | StringList | SecureString
    value: str  # decrypted, when asked with decryption


def _no_file(path: str) -> str | None:
    return None


def _no_ssm(name: str, with_decryption: bool) -> SsmParameter | None:
    raise VariableSourceError("no SSM parameter store is configured")


@dataclass(frozen=True, slots=True)
class Sources:
    options: Mapping[str, object] = field(default_factory=dict)  # --stage, --region, --foo
    params: Mapping[str, str] = field(default_factory=dict)  # --param k=v
    env: Mapping[str, str] = field(default_factory=dict)  # the process environment
    # stage -> the variables of `.env.<stage>` (else `.env`), read when `useDotenv: true`
    dotenv: Callable[[str], Mapping[str, str]] | None = None
    # a path relative to the service directory -> its text, or None when there is no file
    read_file: Callable[[str], str | None] = _no_file
    # (name, with decryption) -> the parameter, or None when it does not exist
    ssm: Callable[[str, bool], SsmParameter | None] = _no_ssm
    instance_id: str = "0"
    account_id: str = DEFAULT_ACCOUNT_ID


# --- resolution ------------------------------------------------------------------------------


class _Problem(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Failed(Exception):
    """The value depends on one that failed, whose problem is reported already."""


def _human(path: Path) -> str:
    return ".".join(str(part) for part in path)


def _cannot(path: Path, why: str) -> _Problem:
    return _Problem(f'Cannot resolve variable at "{_human(path)}": {why}')


def _unescape(text: str) -> str:
    return text.replace("\\${", "${")


def _children(node: object) -> Iterator[Any]:
    if isinstance(node, Mapping):
        yield from list(node)
    elif isinstance(node, list):
        yield from range(len(node))


def _show(value: object) -> str:
    return json.dumps(value) if isinstance(value, str | int | float | bool) else repr(value)


_MISSING = object()


class _Resolver:
    r"""Resolves values in place, each at most once, depth first through `${self:}`.

    Progress is tracked by (container id, key), not by path: `${self:custom.x}` puts the
    very same map at a second path, and a string settled there (say an escaped `\${...}`,
    now plain `${...}`) must not be parsed again when the walk reaches it by the other path.
    """

    def __init__(self, document: Document, sources: Sources) -> None:
        self.document = document
        self.root = document.root
        self.sources = sources
        self.env: dict[str, str] = dict(sources.env)
        self.problems: list[tuple[int, str]] = []
        self._settled: set[tuple[int, object]] = set()
        self._failed: set[tuple[int, object]] = set()
        self._active: list[tuple[tuple[int, object], Path]] = []
        self._complete: set[int] = set()  # containers whose whole subtree is resolved
        self._opaque: set[int] = set()  # containers from SSM: data, never configuration
        self._pinned: list[object] = []  # keeps ids in the sets above from being reused
        self._files: dict[str, object] = {}
        self._ssm: dict[tuple[str, bool], SsmParameter | None] = {}
        self._stage: str | None = None
        self._handlers: dict[str, Callable[[Any, tuple[object, ...], Path], tuple[object, bool]]]
        self._handlers = {
            "self": self._self,
            "opt": self._opt,
            "sls": self._sls,
            "aws": self._aws,
            "env": self._env,
            "param": self._param,
            "file": self._file,
            "ssm": self._ssm_source,
            "strToBool": self._str_to_bool,
            "bref": self._bref,
        }

    # --- driving

    def run(self, only: Iterable[Path] | None) -> None:
        self._load_dotenv()
        if only is None:
            self._walk(self.root, ())
            return
        for path in only:
            with contextlib.suppress(_Failed):  # reported where it failed
                self._config(tuple(str(part) for part in path))

    def _load_dotenv(self) -> None:
        if self.sources.dotenv is None:
            return
        try:
            use = self._config(("useDotenv",))
            stage = self._stage_name() if use is True else None
        except _Failed:
            return
        if stage is None:
            return
        try:
            values = self.sources.dotenv(stage)
        except VariableSourceError as exc:
            self._record((), str(exc))
            return
        for name, value in values.items():
            self.env.setdefault(name, value)  # as dotenv does: the real environment wins

    def _record(self, path: Path, message: str) -> None:
        line = self.document.line(path)
        place = f"{self.document.file_name}:{line}" if line else self.document.file_name
        self.problems.append((line or 0, f"{place}: {message}"))

    def _walk(self, node: object, path: Path) -> None:
        if id(node) in self._opaque or len(path) > MAX_TREE_DEPTH:
            return
        for key in _children(node):
            try:
                child = self._property(node, key, (*path, key))
            except _Failed:
                continue
            if isinstance(child, Mapping | list):
                self._walk(child, (*path, key))

    # --- one property

    def _property(self, container: Any, key: Any, path: Path) -> Any:
        """The value at `container[key]`, its variables resolved (in place)."""
        value = container[key]
        if not isinstance(value, str):
            return value
        ident = (id(container), key)
        if ident in self._settled:
            return value
        if ident in self._failed:
            raise _Failed
        for other, other_path in self._active:
            if other == ident:
                dependent = self._active[-1][1]
                if dependent == other_path:
                    raise _Problem(f'Circular reference. "{_human(path)}" refers to itself')
                raise _Problem(
                    f'Circular reference among "{_human(dependent)}" and "{_human(path)}" '
                    "properties"
                )
        self._pinned.append(container)
        self._active.append((ident, path))
        try:
            result = self._evaluate(value, path, 0)
        except _Problem as problem:
            self._failed.add(ident)
            self._record(path, problem.message)
            raise _Failed from None
        except _Failed:
            self._failed.add(ident)
            raise
        finally:
            self._active.pop()
        container[key] = result
        self._settled.add(ident)
        return result

    def _evaluate(self, text: str, path: Path, depth: int) -> object:
        try:
            variables = parse(text)
        except VariableSyntaxError as exc:
            raise _Problem(f'Variable syntax error at "{_human(path)}": {exc}') from None
        if not variables:
            return _unescape(text)
        whole = len(variables) == 1 and variables[0].start == 0 and variables[0].end == len(text)
        if whole:
            value, external = self._variable(variables[0], path)
            if external and isinstance(value, str):
                if depth >= MAX_NEST_DEPTH:
                    raise _cannot(path, "Excessive property variables nest depth")
                return self._evaluate(value, path, depth + 1)
            return value
        return self._interpolate(text, variables, path)

    def _interpolate(self, text: str, variables: tuple[Variable, ...], path: Path) -> str:
        parts: list[str] = []
        last = 0
        for variable in variables:
            value, _ = self._variable(variable, path)
            shown = js_string(value)
            if shown is None:
                raise _cannot(
                    path, "String value consist of variable which resolve with non-string value"
                )
            parts += [_unescape(text[last : variable.start]), shown]
            last = variable.end
        parts.append(_unescape(text[last:]))
        return "".join(parts)

    def _variable(self, variable: Variable, path: Path) -> tuple[object, bool]:
        """The first source with a value; whether it came from outside the config."""
        last = ""
        for source in variable.sources:
            if isinstance(source, Literal):
                return source.value, False
            value, external = self._source(source, path)
            if value is not None:
                return value, external
            last = source.type
        raise _cannot(path, f'Value not found at "{last}" source')

    def _source(self, source: Reference, path: Path) -> tuple[object, bool]:
        params = tuple(self._part(p, path) for p in source.params or ())
        address = None if source.address is None else self._part(source.address, path)
        handler = self._handlers.get(source.type)
        if handler is None:
            known = ", ".join(sorted(self._handlers))
            raise _cannot(path, f'Unknown variable source "{source.type}" (Lamina has {known})')
        if address is not None and not isinstance(address, str):
            raise _cannot(
                path,
                f'Non-string address argument in variable "{source.type}" source: {_show(address)}',
            )
        try:
            return handler(address, params, path)
        except VariableSourceError as exc:
            raise _cannot(path, str(exc)) from None

    def _part(self, part: Literal | Template, path: Path) -> object:
        if isinstance(part, Literal):
            return part.value
        variables = part.variables
        if len(variables) == 1 and variables[0].start == 0 and variables[0].end == len(part.text):
            return self._variable(variables[0], path)[0]
        return self._interpolate(part.text, variables, path)

    # --- the configuration itself

    def _config(self, keys: tuple[str, ...]) -> Any:
        """The resolved value at `keys` (and everything under it), None when absent."""
        node: Any = self.root
        path: Path = ()
        for key in keys:
            found: Any = _MISSING
            if isinstance(node, Mapping):
                found = key if key in node else next((k for k in node if str(k) == key), _MISSING)
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                found = int(key)
            if found is _MISSING:
                return None
            path = (*path, found)
            node = self._property(node, found, path)
            if node is None:
                return None
        self._complete_subtree(node, path)
        return node

    def _complete_subtree(self, node: object, path: Path) -> None:
        if not isinstance(node, Mapping | list) or id(node) in self._complete:
            return
        if id(node) in self._opaque or len(path) > MAX_TREE_DEPTH:
            return
        for key in _children(node):
            self._complete_subtree(self._property(node, key, (*path, key)), (*path, key))
        self._pinned.append(node)
        self._complete.add(id(node))

    def _stage_name(self) -> str:
        if self._stage is None:
            option = self.sources.options.get("stage")
            if isinstance(option, str) and option:
                self._stage = option
            else:
                written = self._config(("provider", "stage"))
                self._stage = js_string(written) or "dev"
        return self._stage

    # --- sources: each returns (value, whether its text may hold more variables)

    @staticmethod
    def _need_address(kind: str, address: object) -> str:
        if not address:
            raise VariableSourceError(f'Missing address argument in variable "{kind}" source')
        return str(address)

    def _self(self, address: str | None, params: tuple[object, ...], path: Path) -> Any:
        return self._config(tuple(address.split(".")) if address else ()), False

    def _opt(self, address: str | None, params: tuple[object, ...], path: Path) -> Any:
        options = self.sources.options
        return (dict(options) if address is None else options.get(address)), True

    def _sls(self, address: str | None, params: tuple[object, ...], path: Path) -> Any:
        name = self._need_address("sls", address)
        if name == "stage":
            return self._stage_name(), False
        if name == "instanceId":
            return self.sources.instance_id, False
        raise VariableSourceError(f'Unsupported "{name}" address argument in variable "sls" source')

    def _aws(self, address: str | None, params: tuple[object, ...], path: Path) -> Any:
        name = self._need_address("aws", address)
        if name == "region":
            option = self.sources.options.get("region")
            if isinstance(option, str) and option:
                return option, False
            return js_string(self._config(("provider", "region"))) or "us-east-1", False
        if name == "accountId":
            return self.sources.account_id, False
        raise VariableSourceError(f'Unsupported "{name}" address argument in variable "aws" source')

    def _env(self, address: str | None, params: tuple[object, ...], path: Path) -> Any:
        name = self._need_address("env", address)
        return self.env.get(name) or None, True  # empty counts as unset, as in Serverless

    def _param(self, address: str | None, params: tuple[object, ...], path: Path) -> Any:
        name = self._need_address("param", address)
        if name in self.sources.params:
            return self.sources.params[name], True
        for stage in (self._stage_name(), "default"):
            value = self._config(("params", stage, name))
            if value is not None:
                return value, False
        return None, False

    def _file(self, address: str | None, params: tuple[object, ...], path: Path) -> Any:
        if not params or params[0] is None:
            raise VariableSourceError('Missing path argument in variable "file" source')
        if not isinstance(params[0], str):
            raise VariableSourceError(
                f'Non-string path argument in variable "file" source: {_show(params[0])}'
            )
        relative = posixpath.normpath(params[0])
        if relative.startswith(("/", "../")) or relative == "..":
            raise VariableSourceError("Cannot load file from outside of service folder")
        if relative not in self._files:
            self._files[relative] = self._read(relative)
        content = self._files[relative]
        if address:
            for key in address.split("."):
                if isinstance(content, Mapping):
                    matches = [v for k, v in content.items() if str(k) == key]
                    content = content.get(key, matches[0] if matches else None)
                elif isinstance(content, list) and key.isdigit() and int(key) < len(content):
                    content = content[int(key)]
                else:
                    return None, True
                if content is None:
                    return None, True
        return content, True

    def _read(self, relative: str) -> object:
        text = self.sources.read_file(relative)
        if text is None:
            return None
        extension = posixpath.splitext(relative)[1]
        if extension in (".yml", ".yaml"):
            try:
                return load_yaml(text, relative)
            except ServerlessConfigError as exc:
                detail = exc.problems[0].split(": invalid YAML: ", 1)[-1]
                raise VariableSourceError(f'Cannot parse "{relative}": {detail}') from None
        if extension in (".json", ".tfstate"):
            try:
                return json.loads(text)
            except ValueError as exc:
                raise VariableSourceError(
                    f'Cannot parse "{relative}": JSON parse error: {exc}'
                ) from None
        if extension in (".js", ".cjs", ".mjs", ".ts"):
            raise VariableSourceError(
                f'Cannot load "{relative}": Lamina does not run JavaScript; use YAML or JSON'
            )
        return text

    def _ssm_source(self, address: str | None, params: tuple[object, ...], path: Path) -> Any:
        name = self._need_address("ssm", address)
        raw = "raw" in params
        decrypt = "noDecrypt" not in params
        key = (name, decrypt)
        if key not in self._ssm:  # once per run, however often the file asks
            self._ssm[key] = self.sources.ssm(name, decrypt)
        parameter = self._ssm[key]
        if parameter is None:
            return None, False
        value = parameter.value
        if parameter.type == "String":
            return (json.loads(value) if "json" in params else value), False
        if parameter.type == "StringList":
            return (value if raw else value.split(",")), False
        if parameter.type != "SecureString":
            raise VariableSourceError(f'Unexpected parameter type: "{parameter.type}"')
        if raw or not value.startswith("{"):
            return value, False
        try:
            data = json.loads(value)
        except ValueError:
            return value, False
        self._pinned.append(data)
        self._opaque.add(id(data))
        return data, False

    def _str_to_bool(self, address: str | None, params: tuple[object, ...], path: Path) -> Any:
        if not params or params[0] is None:
            raise VariableSourceError('Missing "strToBool" input')
        text = js_string(params[0])
        if text is None:
            raise VariableSourceError(
                f'Non-string "strToBool" input:. Received: {_show(params[0])}'
            )
        normalised = text.strip().lower()
        if normalised in ("true", "1", "false", "0"):
            return normalised in ("true", "1"), False
        raise VariableSourceError(
            'Invalid "strToBool" input: Expected either "true", "false", "0", or "1". '
            f"Received: {text}"
        )

    def _bref(self, address: str | None, params: tuple[object, ...], path: Path) -> Any:
        name = self._need_address("bref", address)
        layer = name.removeprefix("layer.")
        if layer == name or not BREF_LAYER.fullmatch(layer):
            raise VariableSourceError(f'Unknown Bref layer named "{layer}"')
        # Not an AWS ARN: the deploy reads it as "Lamina's own PHP runtime".
        return RUNTIME_LAYER_PREFIX + layer, False


def resolve(
    document: Document, sources: Sources, *, only: Iterable[Path] | None = None
) -> Document:
    """Replace the variables of `document` in place (with `only`, just those the given
    paths need). Raises `ServerlessConfigError` with every variable that failed."""
    resolver = _Resolver(document, sources)
    resolver.run(only)
    if resolver.problems:
        ordered = sorted(resolver.problems, key=lambda p: p[0])
        raise ServerlessConfigError([message for _, message in ordered])
    return replace(document, resolved=only is None)


# --- .env files ------------------------------------------------------------------------------

_DOTENV_LINE = re.compile(
    r"^\s*(?:export\s+)?([\w.-]+)\s*[=:]\s*('(?:[^'])*'|\"(?:\\.|[^\"\\])*\"|[^#\r\n]*)?\s*(?:#.*)?$"
)
_EXPANSION = re.compile(r"\\?\$(?:\{([\w.-]+)(?::-([^}]*))?\}|([A-Za-z_][\w]*))")


def parse_dotenv(text: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`.env` text as the dotenv and dotenv-expand packages read it: `KEY=value` lines,
    `#` comments, quotes, `export`, and `${VAR}` / `$VAR` expansion (the real environment
    first, then the file)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = _DOTENV_LINE.match(line)
        if match is None or not line.strip() or line.lstrip().startswith("#"):
            continue
        name, raw = match.group(1), (match.group(2) or "").strip()
        if raw[:1] == "'" and raw[-1:] == "'" and len(raw) > 1:
            values[name] = raw[1:-1]
            continue
        if raw[:1] == '"' and raw[-1:] == '"' and len(raw) > 1:
            raw = raw[1:-1].replace("\\n", "\n").replace("\\r", "\r").replace('\\"', '"')
        values[name] = _expand(raw, values, environ or {})
    return values


def _expand(value: str, parsed: Mapping[str, str], environ: Mapping[str, str]) -> str:
    def replace_one(match: re.Match[str]) -> str:
        if match.group(0).startswith("\\"):
            return match.group(0)[1:]
        name = match.group(1) or match.group(3)
        found = environ.get(name) or parsed.get(name)
        return found if found is not None else (match.group(2) or "")

    return _EXPANSION.sub(replace_one, value)
