"""Budget windows as the dashboard draws them: spend and holds against the limit, reset time, and the 429.

The state comes from the same ``RequestCharger.window_states`` the API views use, and the refusal text from
the same ``refusal_message`` the LLM routes answer with, so the page shows exactly what a client would get.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledgergate.container import Container
from ledgergate.dashboard.formatting import percent
from ledgergate.domain.entities import Entity
from ledgergate.domain.windows import UNLIMITED_LIFETIME, Window
from ledgergate.services.refusal_messages import refusal_message
from ledgergate.services.request_charging import Refusal

NEAR_LIMIT_PERCENT = 80.0


@dataclass(frozen=True, slots=True)
class WindowBar:
    label: str  # "1h", "1mo", "lifetime"
    key: str  # canonical: equal for windows over the same periods
    reset_duration: str | None  # what /reset_spend takes as budget_duration (None: the primary window)
    reset_model: str | None  # what /reset_spend takes as model (a model_max_budget window)
    max_nanos: int | None  # None: no limit (an entity without budgets shows its lifetime spend)
    spent_nanos: int
    held_nanos: int
    reset_at_s: int | None
    inherited_from: str | None  # the shared budget object the window comes from
    refusal: str | None  # the 429 message a request gets now, if the window refuses

    @property
    def limited(self) -> bool:
        return self.max_nanos is not None

    @property
    def spent_percent(self) -> float:
        if self.max_nanos == 0:
            return 100.0
        return percent(self.spent_nanos, self.max_nanos)

    @property
    def held_percent(self) -> float:
        return percent(self.held_nanos, self.max_nanos)

    @property
    def used_percent(self) -> float:
        """Spend and holds together: what admission compares with the limit."""
        return self.spent_percent + self.held_percent

    @property
    def level(self) -> str:
        """``full`` (refusing), ``warn`` (at least 80%) or ``ok``; CSS classes and filters use it."""
        if self.refusal is not None:
            return "full"
        if self.limited and self.used_percent >= NEAR_LIMIT_PERCENT:
            return "warn"
        return "ok"


def _refuses(window: Window, spent_nanos: int, held_nanos: int) -> bool:
    # The standard admission rule: refused once spent + held reaches the limit. Strict mode also refuses a
    # request that does not fit, which depends on the request; a page can only show the certain refusals.
    return window.max_budget_nanos is not None and spent_nanos + held_nanos >= window.max_budget_nanos


async def window_bars(container: Container, entity: Entity) -> list[WindowBar]:
    """Every window of ``entity`` (its own and its shared budget's), primary first."""
    directory = container.directory
    primary, limits = await directory.effective_budget(entity)
    shown: tuple[Window, ...] = (primary, *limits) if primary is not None else limits
    if not shown:
        shown = (UNLIMITED_LIFETIME,)
    own = {window.key for window in entity.windows}
    states = await container.charger.window_states(entity, shown)
    bars = []
    for index, (window, (state, reset_at_s)) in enumerate(zip(shown, states, strict=True)):
        refusal = None
        if _refuses(window, state.spent_nanos, state.held_nanos):
            refusal = refusal_message(Refusal(entity.ref, entity.display_name(), window, state, reset_at_s))
        is_primary = index == 0 and primary is not None
        window_limited = window.max_budget_nanos is not None
        bars.append(
            WindowBar(
                label=window.title,
                key=window.key,
                reset_duration=None if is_primary and window.duration is None else window.label,
                reset_model=window.model,
                max_nanos=window.max_budget_nanos,
                spent_nanos=state.spent_nanos,
                held_nanos=state.held_nanos,
                reset_at_s=reset_at_s if window.duration is not None else None,
                inherited_from=entity.budget_id if window_limited and window.key not in own else None,
                refusal=refusal,
            )
        )
    return bars
