"""Deployments of a service/stage (a stack) and which one is live. Pure data.

A deployment records the document it applied (so that a rollback can apply it again) and
the version of each function it made live.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Deployments kept per stack for rollback (serverless' maxPreviousDeploymentArtifacts);
# older ones are deleted when a new one is recorded.
KEEP_DEPLOYMENTS = 5


@dataclass(frozen=True, slots=True)
class DeployedVersion:
    key: str  # key in serverless.yml
    name: str  # deployed function name
    version: str  # the published version the deployment made live, or $LATEST
    changed: bool  # code or configuration differed from what was deployed before


@dataclass(frozen=True, slots=True)
class Deployment:
    id: int
    service: str
    stage: str
    region: str
    created: float  # epoch seconds
    spec: dict[str, Any]  # the DeploymentSpec document, as `wire.deployment.to_json` makes it
    functions: tuple[DeployedVersion, ...]

    @property
    def versions(self) -> dict[str, str]:
        return {f.name: f.version for f in self.functions}


@dataclass(frozen=True, slots=True)
class Stack:
    service: str
    stage: str
    region: str
    deployment_id: int  # the live deployment
    updated: float  # epoch seconds
