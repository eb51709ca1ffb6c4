"""Which runtime a function runs on, from its `runtime`, its layers and its environment.

Bref's PHP runtimes arrive as layers (reference 3.1): `provided.al2` + a `php-82-fpm` layer
(Bref 1/2), `provided.al2023` + a `php-84` layer with `BREF_RUNTIME=fpm` (Bref 3), or the
Bref plugin's `runtime: php-82-fpm` shorthand that the CLI turns into the same thing. Lamina
ships those runtimes itself: a layer ARN from one of Bref's publishing accounts (any region,
any version number) or Lamina's own marker `arn:lamina:runtime:<name>` selects the built-in
runtime of that name; its files never come from AWS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from lamina.core.models import PROVIDED_RUNTIMES, PYTHON_RUNTIMES

RuntimeKind = Literal["python", "provided", "php-function", "php-fpm", "php-console"]

# Bref's layer accounts: v0.5/1.x, v2, v3.
BREF_ACCOUNTS = frozenset({"209497400698", "534081306603", "873528684822"})
LAMINA_MARKER = "arn:lamina:runtime:"

_BREF_LAYER = re.compile(r"php-(?P<version>\d\d)(?P<variant>-fpm|-console)?|console")
# Bref 3's BREF_RUNTIME: a short name, or the class its serverless plugin writes.
_BREF_RUNTIME_ENV = {
    "function": "php-function",
    "fpm": "php-fpm",
    "console": "php-console",
    "Bref\\FunctionRuntime\\Main": "php-function",
    "Bref\\FpmRuntime\\Main": "php-fpm",
    "Bref\\ConsoleRuntime\\Main": "php-console",
}


@dataclass(frozen=True, slots=True)
class RuntimeChoice:
    kind: RuntimeKind
    php_version: str | None = None  # "8.2" for PHP runtimes that name one
    runtime_layers: tuple[str, ...] = ()  # the layers that selected a built-in runtime


def builtin_layer_name(arn: str) -> str | None:
    """`php-82-fpm` for a Bref layer ARN or a Lamina marker, None for any other layer.
    Bref's `arm-` layers name the same runtime: Lamina runs the machine's own PHP."""
    if arn.startswith(LAMINA_MARKER):
        name = arn[len(LAMINA_MARKER) :].removeprefix("arm-")
        return name if _BREF_LAYER.fullmatch(name) else None
    parts = arn.split(":")
    is_layer = (
        len(parts) in (7, 8) and parts[:3] == ["arn", "aws", "lambda"] and parts[5] == "layer"
    )
    name = parts[6].removeprefix("arm-") if is_layer else ""
    if is_layer and parts[4] in BREF_ACCOUNTS and _BREF_LAYER.fullmatch(name):
        return name
    return None


def choose(runtime: str, layers: Sequence[str], environment: Mapping[str, str]) -> RuntimeChoice:
    """The runtime for a function. Unknown runtimes are the caller's to reject."""
    if runtime in PYTHON_RUNTIMES:
        return RuntimeChoice("python")
    shorthand = _BREF_LAYER.fullmatch(runtime)
    names = [(arn, builtin_layer_name(arn)) for arn in layers]
    php = [(arn, name) for arn, name in names if name is not None and name != "console"]
    if shorthand is not None and runtime != "console":
        return _php(runtime, (), environment)
    if runtime in PROVIDED_RUNTIMES and php:
        _, name = php[-1]
        console = any(name == "console" for _, name in names)
        choice = _php(name, tuple(a for a, n in names if n is not None), environment)
        if console and choice.kind == "php-function":
            return RuntimeChoice("php-console", choice.php_version, choice.runtime_layers)
        return choice
    return RuntimeChoice("provided")


def _php(name: str, layers: tuple[str, ...], environment: Mapping[str, str]) -> RuntimeChoice:
    match = _BREF_LAYER.fullmatch(name)
    assert match is not None and match["version"]
    version = f"{match['version'][0]}.{match['version'][1]}"
    variant = match["variant"]
    kind: RuntimeKind
    if variant == "-fpm":
        kind = "php-fpm"
    elif variant == "-console":
        kind = "php-console"
    else:
        # Bref 3: one php-8x layer for all three runtimes, chosen by BREF_RUNTIME.
        chosen = _BREF_RUNTIME_ENV.get(environment.get("BREF_RUNTIME", "function"), "php-function")
        kind = (
            "php-fpm"
            if chosen == "php-fpm"
            else ("php-console" if chosen == "php-console" else "php-function")
        )
    return RuntimeChoice(kind, version, layers)
