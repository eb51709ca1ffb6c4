"""`lamina rollback [--deployment N]`: make an earlier deployment of the service/stage live
again (`sls rollback`): its functions' code and configuration, layers and routes.

Without `--deployment`, the server goes back to the deployment before the live one.
`lamina deploy list` shows the ids.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.text import Text

from lamina.cli.commands.info import print_stack
from lamina.cli.project import ConfigOption, Options, RegionOption, StageOption, load_identity
from lamina.cli.shared import reports_errors, state_of


@reports_errors
def rollback(
    ctx: typer.Context,
    deployment: Annotated[
        int | None,
        typer.Option(
            "--deployment",
            "-d",
            min=1,
            help="Deployment id to return to (see `lamina deploy list`; default: the previous)",
        ),
    ] = None,
    stage: StageOption = None,
    region: RegionOption = None,
    config: ConfigOption = None,
) -> None:
    """Return this service's stage to an earlier deployment."""
    state = state_of(ctx)
    started = time.monotonic()
    client = state.client()
    identity = load_identity(config, Options(stage=stage, region=region), client)
    result = client.rollback(identity.service, identity.stage, deployment)
    elapsed = time.monotonic() - started
    target = result.get("id", deployment)
    what = f"deployment {target}" if target is not None else "the previous deployment"
    state.out.print(
        Text(f"✔ Service rolled back to {what} ({elapsed:.1f}s)", "green"), soft_wrap=True
    )
    state.out.print()
    print_stack(state, dict(result), identity)
