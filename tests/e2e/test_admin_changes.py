"""Admin changes made on one instance are enforced by the other before the admin call returns.

LiteLLM's per-pod caches kept serving blocked keys, old budgets and pre-reset spend for minutes on the pods
that did not take the admin call.
"""

from __future__ import annotations

import asyncio
import statistics

from ledgergate.storage.redis_invalidation import DEFAULT_LEASE_S
from tests.e2e.cluster import usd_for_requests
from tests.e2e.conftest import StartCluster
from tests.e2e.traffic import admin_post, chat, http_client, new_key
from tests.support.timing import scaled

# With every instance acknowledging, an admin write waits for one round of pub/sub and acknowledgements
# (milliseconds); only an instance that cannot acknowledge makes it wait for that instance's lease to end, which
# takes at least 3/4 of DEFAULT_LEASE_S (renewals come every quarter lease): at least 1.4 s. That lower bound
# holds under any load; the upper one scales (tests/support/timing.py), and is compared with the median of
# several writes, so that one write slowed by a busy machine does not read as a lease wait.
ACKNOWLEDGED_WRITE_MAX_S = scaled(1.0)
LEASE_WAIT_MIN_S = 1.0


async def test_two_instances_admin_changes_apply_on_the_other_instance_at_once(start_cluster: StartCluster) -> None:
    """Made on A, enforced by B on its next request: a spend reset unblocks, a key block, a lower budget, a team
    block and a key deletion refuse, each undone change serves again; B had the key and its team cached. Each
    write waits only for B's acknowledgement, and not at all once B has stopped."""
    cluster = await start_cluster()
    a, b = cluster.instances
    took: list[float] = []
    async with http_client() as http:
        team, _ = await admin_post(http, a, "/team/new", {"team_alias": "e2e-visibility"})
        team_id = str(team["team_id"])
        secret, _ = await new_key(http, a, team_id=team_id, max_budget=usd_for_requests(3))
        for _ in range(3):
            assert (await chat(http, b, secret)).status == 200
        assert (await chat(http, b, secret)).status == 429

        async def on_a(path: str, body: dict[str, object]) -> None:
            _, elapsed_s = await admin_post(http, a, path, body)
            took.append(elapsed_s)

        await on_a(f"/key/{secret}/reset_spend", {"reset_to": 0})
        assert (await chat(http, b, secret)).status == 200  # spend 1 of 3

        await on_a("/key/block", {"key": secret})
        assert (await chat(http, b, secret)).status == 401
        await on_a("/key/unblock", {"key": secret})
        assert (await chat(http, b, secret)).status == 200  # spend 2 of 3

        await on_a("/key/update", {"key": secret, "max_budget": usd_for_requests(2)})
        refused = await chat(http, b, secret)
        assert refused.status == 429 and refused.body["error"]["entity"] == "key"
        await on_a("/key/update", {"key": secret, "max_budget": usd_for_requests(10)})
        assert (await chat(http, b, secret)).status == 200

        await on_a("/team/block", {"team_id": team_id})
        assert (await chat(http, b, secret)).status == 403
        await on_a("/team/unblock", {"team_id": team_id})
        assert (await chat(http, b, secret)).status == 200

        await on_a("/key/delete", {"keys": [secret]})
        assert (await chat(http, b, secret)).status == 401

        # A gracefully stopped instance leaves at once: writes do not wait for its lease to run out.
        await asyncio.to_thread(b.stop)
        await on_a("/team/update", {"team_id": team_id, "team_alias": "e2e-visibility-2"})
    assert statistics.median(took) < ACKNOWLEDGED_WRITE_MAX_S, took


async def test_two_instances_frozen_instance_never_serves_its_stale_cache(start_cluster: StartCluster) -> None:
    """An instance that cannot acknowledge (SIGSTOP: a stalled VM, a long pause) delays an admin write by at
    most its lease, and once it runs again it refuses the blocked key on its very first request: its lease
    lapsed, so it reads the database, and it drops its cache before using one again."""
    cluster = await start_cluster()
    a, b = cluster.instances
    async with http_client() as http:
        secret, _ = await new_key(http, a, max_budget=usd_for_requests(100))
        assert (await chat(http, b, secret)).status == 200  # cached on B
        b.pause()
        try:
            _, blocked_in_s = await admin_post(http, a, "/key/block", {"key": secret})
        finally:
            b.resume()
        assert (await chat(http, b, secret)).status == 401
        # B did not acknowledge: A waited for B's lease to run out, and no longer.
        assert LEASE_WAIT_MIN_S <= blocked_in_s <= DEFAULT_LEASE_S + scaled(1.0)  # the lease, not a hang

        _, unblocked_in_s = await admin_post(http, a, "/key/unblock", {"key": secret})
        assert unblocked_in_s < DEFAULT_LEASE_S + scaled(1.0)  # B is back: it acknowledges again (not a hang)
        assert (await chat(http, b, secret)).status == 200
