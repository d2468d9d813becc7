"""window_spend: the reference definition every counter and displayed spend must agree with (domain/ledger.py)."""

from __future__ import annotations

from ledgergate.domain.charging import EntityRef, EntityType
from ledgergate.domain.ledger import Adjustment, SpendRecord, first_of_each_request, window_spend
from tests.builders import spend_record

KEY = EntityRef(EntityType.KEY, "k1")
TEAM = EntityRef(EntityType.TEAM, "t1")
OTHER_KEY = EntityRef(EntityType.KEY, "k2")
PERIOD_START_S = 1_700_000_000
PERIOD_END_S = PERIOD_START_S + 3600
US = 1_000_000


def _record(request_id: str, cost: int, at_us: int, targets: tuple[EntityRef, ...] = (KEY, TEAM)) -> SpendRecord:
    return spend_record(
        request_id,
        cost_nanos=cost,
        charged_at_us=at_us,
        targets=targets,
        key_id="k1",
        model="gpt-4o-mini",
        deployment_id="d1",
        prompt_tokens=10,
        completion_tokens=5,
        ended_at_us=at_us + 1000,
    )


def _adjustment(adj_id: str, entity: EntityRef, previous: int, new: int, window: str = "1h") -> Adjustment:
    return Adjustment(
        adjustment_id=adj_id,
        entity=entity,
        window=window,
        period_start_s=PERIOD_START_S,
        previous_nanos=previous,
        new_nanos=new,
        actor="admin",
        reason="test",
        created_at_us=PERIOD_START_S * US,
    )


def _spend(records: list[SpendRecord], adjustments: list[Adjustment], entity: EntityRef = KEY) -> int:
    return window_spend(records, adjustments, entity, "1h", PERIOD_START_S, PERIOD_END_S)


def test_window_spend_empty_is_zero() -> None:
    """No charges and no adjustments: nothing spent."""
    assert _spend([], []) == 0


def test_window_spend_counts_charges_in_half_open_period() -> None:
    """A charge at the start counts, one at the end belongs to the next period: [start, end)."""
    records = [
        _record("at-start", 5, PERIOD_START_S * US),
        _record("inside", 7, (PERIOD_START_S + 1800) * US),
        _record("last-microsecond", 11, PERIOD_END_S * US - 1),
        _record("at-end", 100, PERIOD_END_S * US),
        _record("before", 1000, PERIOD_START_S * US - 1),
    ]
    assert _spend(records, []) == 5 + 7 + 11


def test_window_spend_counts_only_records_charging_the_entity() -> None:
    """A record is the entity's spend only if the entity was among its charge targets."""
    records = [_record("mine", 5, PERIOD_START_S * US), _record("theirs", 50, PERIOD_START_S * US, (OTHER_KEY,))]
    assert _spend(records, []) == 5
    assert _spend(records, [], OTHER_KEY) == 50
    assert _spend(records, [], TEAM) == 5


def test_window_spend_adds_adjustments_of_same_window_and_period() -> None:
    """A reset_spend is a delta in its own window and period; other windows, periods and entities are untouched."""
    records = [_record("r1", 80, PERIOD_START_S * US + 10)]
    adjustments = [
        _adjustment("reset", KEY, previous=80, new=20),
        _adjustment("other-window", KEY, previous=80, new=0, window="1d"),
        _adjustment("other-entity", TEAM, previous=80, new=0),
        Adjustment("old-period", KEY, "1h", PERIOD_START_S - 3600, 50, 0, "admin", "test", 0),
    ]
    assert _spend(records, adjustments) == 20
    assert _spend(records, adjustments, TEAM) == 0
    assert adjustments[0].delta_nanos == -60


def test_first_of_each_request_marks_only_the_first_entry_of_each_request_id() -> None:
    """The ledger's one write rule within a batch: the first entry of a request id wins, every later one (whatever
    it carries) writes nothing; order is kept and distinct ids all win."""
    assert first_of_each_request(["r1", "r2", "r1", "r3", "r2", "r1"]) == [True, True, False, True, False, False]
    assert first_of_each_request([]) == []
    assert first_of_each_request(["only"]) == [True]
