"""Model name -> deployment, round-robin over the deployments that share a public name."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

from ledgergate.deployments import Deployment


class ModelRouter:
    def __init__(self, deployments: Sequence[Deployment]) -> None:
        grouped: dict[str, list[Deployment]] = {}
        for deployment in deployments:
            grouped.setdefault(deployment.model_name, []).append(deployment)
        self._cycles: dict[str, Iterator[Deployment]] = {
            name: itertools.cycle(group) for name, group in grouped.items()
        }
        self._names = tuple(grouped)

    def pick(self, model: str) -> Deployment | None:
        cycle = self._cycles.get(model)
        return next(cycle) if cycle is not None else None

    @property
    def model_names(self) -> tuple[str, ...]:
        return self._names
