"""Admin spend resets: an adjustment record in the ledger, then the counter every instance enforces."""

from __future__ import annotations

import uuid
from typing import Any

from ledgergate.domain.durations import DurationError
from ledgergate.domain.entities import Entity
from ledgergate.domain.errors import InvalidInput
from ledgergate.domain.ledger import Adjustment
from ledgergate.domain.money import format_usd, nanos_to_usd
from ledgergate.domain.ports import Clock, Counters, Ledger
from ledgergate.domain.windows import UNLIMITED_LIFETIME, find_window, parse_max_budget
from ledgergate.services.directory import Directory
from ledgergate.services.errors import NotFound
from ledgergate.services.request_charging import RequestCharger
from ledgergate.services.views import iso_time


def parse_reset_to(value: object) -> int:
    """``reset_to`` in nanos: a JSON number (not a bool or a string), converted like every amount."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput("reset_to", f"must be a number of USD (not a bool or string), got {value!r}")
    return parse_max_budget(value, "reset_to")


class SpendResets:
    def __init__(
        self, directory: Directory, charger: RequestCharger, counters: Counters, ledger: Ledger, clock: Clock
    ) -> None:
        self._directory = directory
        self._charger = charger
        self._counters = counters
        self._ledger = ledger
        self._clock = clock

    async def reset(
        self,
        entity: Entity,
        reset_to: object,
        budget_duration: object,
        actor: str,
        reason: str = "",
        model: object = None,
    ) -> dict[str, Any]:
        """Set one window's current-period spend to ``reset_to`` (the primary window unless one is named).

        ``model`` names a model window (``model_max_budget``); without ``budget_duration``, the model's first.
        """
        reset_to_nanos = parse_reset_to(reset_to)
        if budget_duration is not None and not isinstance(budget_duration, str):
            raise InvalidInput("budget_duration", "must be a duration string such as '1h'")
        if model is not None and not isinstance(model, str):
            raise InvalidInput("model", "must be the model name of one of the model_max_budget windows")
        model_name = model if isinstance(model, str) else None
        windows = await self._directory.effective_windows(entity)
        try:
            window = find_window(windows, budget_duration, model_name) if windows else None
        except DurationError as exc:
            raise InvalidInput("budget_duration", str(exc)) from exc
        if window is None:
            if budget_duration is not None or model_name is not None:
                named = " ".join(part for part in (budget_duration, model_name and f"model {model_name!r}") if part)
                titles = [w.title for w in windows] or ["none"]
                raise NotFound(
                    f"no {named} window on this {entity.type.value}; its windows: {titles}",
                    param="model" if model_name is not None and budget_duration is None else "budget_duration",
                )
            window = UNLIMITED_LIFETIME
        line = self._charger.counter_line(entity.ref, window)
        ((state, _),) = await self._charger.window_states(entity, [window])
        previous = state.spent_nanos
        if reset_to_nanos > previous:
            raise InvalidInput(
                "reset_to",
                f"must be <= the current spend of the {window.title} window ({format_usd(previous)})",
            )
        if window.max_budget_nanos is not None and reset_to_nanos > window.max_budget_nanos:
            raise InvalidInput(
                "reset_to", f"must be <= the window's max_budget ({format_usd(window.max_budget_nanos)})"
            )
        adjustment = Adjustment(
            adjustment_id=uuid.uuid4().hex,
            entity=entity.ref,
            window=window.key,
            period_start_s=line.key.period_start_s,
            previous_nanos=previous,
            new_nanos=reset_to_nanos,
            actor=actor,
            reason=reason,
            created_at_us=int(self._clock.now_s() * 1_000_000),
        )
        new_spend = reset_to_nanos
        if window.max_budget_nanos is None:  # unlimited windows have no counter: the ledger is all there is
            await self._ledger.add_adjustment(adjustment)
        else:
            # Counter first, record second: a counter loaded in between cannot count the adjustment twice.
            new_state = await self._counters.adjust(line, adjustment.delta_nanos, self._ledger.window_sums)
            new_spend = new_state.spent_nanos
            try:
                await self._ledger.add_adjustment(adjustment)
            except BaseException:
                await self._counters.adjust(line, -adjustment.delta_nanos, self._ledger.window_sums)
                raise
        return {
            "entity_type": entity.type.value,
            "entity_id": entity.id,
            "budget_duration": window.label if window.duration else None,
            "model": window.model,
            "previous_spend": nanos_to_usd(previous),
            "spend": nanos_to_usd(new_spend),
            "max_budget": nanos_to_usd(window.max_budget_nanos) if window.max_budget_nanos is not None else None,
            "reset_at": iso_time(line.period_end_s) if window.duration else None,
            "adjustment_id": adjustment.adjustment_id,
        }
