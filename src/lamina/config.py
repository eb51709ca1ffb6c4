"""Platform settings. Every field is a `LAMINA_*` environment variable and a `lamina up` flag."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from lamina.core.keepalive import POLICY_NAMES


def _default_memory_budget_mb() -> int:
    """80 % of the machine's RAM: what live execution environments may add up to."""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 8192
    return int(pages * 0.8) // (1024 * 1024)


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path = field(default_factory=lambda: Path.home() / ".lamina")
    host: str = "127.0.0.1"
    port: int = 8080  # data plane (HTTP gateway)
    control_port: int = 8081  # control API: Lambda Invoke API, functions, logs, health
    region: str = "us-east-1"
    account_id: str = "000000000000"
    keep_alive: float = 600.0  # seconds an idle execution environment is kept warm
    # fixed (keep_alive for every environment) or hybrid (learned per function, with
    # pre-warming: Shahrad et al., ATC 2020); see docs/keep-alive.md
    keep_alive_policy: str = "fixed"
    concurrency: int = 1000  # account-level concurrency limit
    memory_budget: int = 0  # MB for all live environments; 0 = 80 % of RAM
    init_timeout: float = 10.0  # seconds a runtime may take to reach its first `next`
    sandbox: str = "auto"  # auto (linux where the machine allows it), linux or plain
    # seconds before an async event's first retry (doubled for the second); Lambda: ~60
    async_retry_delay: float = 60.0

    @property
    def memory_budget_mb(self) -> int:
        return self.memory_budget or _default_memory_budget_mb()

    @property
    def database(self) -> Path:
        return self.home / "lamina.db"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Defaults, then `LAMINA_<FIELD>` variables, then explicit overrides (CLI flags)."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = environ.get(f"LAMINA_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, raw, f.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = replace(cls(), **values)  # type: ignore[arg-type]
        if settings.keep_alive_policy not in POLICY_NAMES:
            raise ValueError(
                f"LAMINA_KEEP_ALIVE_POLICY (--keep-alive-policy) = "
                f"{settings.keep_alive_policy!r}: must be one of {', '.join(POLICY_NAMES)}"
            )
        return replace(settings, home=Path(settings.home).expanduser())


def _parse(name: str, raw: str, kind: object) -> object:
    try:
        if kind in ("int", int):
            return int(raw)
        if kind in ("float", float):
            return float(raw)
    except ValueError:
        raise ValueError(f"LAMINA_{name.upper()} = {raw!r}: must be a number") from None
    if kind in ("Path", Path):
        return Path(raw)
    return raw
