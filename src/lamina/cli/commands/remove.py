"""`lamina remove`: delete everything a service/stage deployed (`sls remove`): its functions,
versions, layers and routes, through `DELETE /lamina/v1/stacks/{service}/{stage}`."""

from __future__ import annotations

import time

import typer
from rich.text import Text

from lamina.cli.project import ConfigOption, Options, RegionOption, StageOption, load_identity
from lamina.cli.shared import reports_errors, state_of


@reports_errors
def remove(
    ctx: typer.Context,
    stage: StageOption = None,
    region: RegionOption = None,
    config: ConfigOption = None,
) -> None:
    """Remove this service's stage and everything it deployed."""
    state = state_of(ctx)
    started = time.monotonic()
    client = state.client()
    identity = load_identity(config, Options(stage=stage, region=region), client)
    state.out.print(
        Text(f"Removing {identity.service} from stage {identity.stage} ({identity.region})"),
        soft_wrap=True,
    )
    client.delete_stack(identity.service, identity.stage)
    elapsed = time.monotonic() - started
    state.out.print(
        Text(
            f"✔ Service {identity.service} has been successfully removed ({elapsed:.1f}s)", "green"
        ),
        soft_wrap=True,
    )
