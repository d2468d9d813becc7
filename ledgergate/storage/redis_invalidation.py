"""Entity caches of several instances kept coherent through Redis (docs/decisions/0004).

Guarantee: when ``announce`` returns, no other instance can serve the entity's previous state from its cache.
A cache hit costs no I/O; the price is paid by the (rare) admin write, which waits for acknowledgements.

Protocol, every key under the instance prefix ``P`` (same hash tag as the counters):

- ``P dir:state``: hash ``epoch`` (random, recreated when the state is lost, e.g. flushed) and ``ver`` (a
  counter bumped by every announced change). A change is announced by one script that bumps ``ver`` and
  publishes ``"<epoch> <ver> <entity type> <entity id>"`` on channel ``P dir:changes``.
- Leases: an instance answers from its cache only while it holds a lease, renewed every ``lease_s / 4`` by a
  script that refuses (and extends nothing) unless the instance has seen every version so far. The lease ends
  ``lease_s`` after the renewal was *sent*, while Redis keeps ``P dir:live:<id>`` ``lease_s`` after it *ran*:
  so when that key is gone, the instance's own lease is over. ``P dir:members`` maps instance id -> the last
  version it acknowledged (every renewal acknowledges ``seen``).
- A writer, after its commit, announces and then waits until every other live member has acknowledged the new
  version, or at most ``lease_s``: an instance that has not acknowledged by then has lost its lease (its last
  renewal ran before the announcement, and no later one can succeed without seeing it), so it reads the
  database until it renews, and it renews only after dropping the entity (or its whole cache).

An instance drops its whole cache when it may have missed a change: a renewal refused, a gap or another epoch in
the versions it receives, or a lease that lapsed (Redis unreachable, event loop stalled).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ledgergate.domain.charging import EntityRef, EntityType

log = logging.getLogger("ledgergate.cache")

DEFAULT_LEASE_S = 2.0
# The local lease ends this much earlier than Redis forgets it: clock-rate differences and scheduling jitter.
_LEASE_MARGIN_S = 0.1
_SUBSCRIBE_TIMEOUT_S = 5.0
_RENEW_ATTEMPTS = 3

_NEW_STATE = """
local function state(key, fresh_epoch)
  local epoch = redis.call('HGET', key, 'epoch')
  if epoch then return epoch, tonumber(redis.call('HGET', key, 'ver')), 0 end
  redis.call('HSET', key, 'epoch', fresh_epoch, 'ver', 0)
  return fresh_epoch, 0, 1
end
"""

_ANNOUNCE = (
    _NEW_STATE
    + """
-- KEYS: state   ARGV: channel, fresh epoch, entity type, entity id.  Returns {epoch, ver, state was recreated}.
local epoch, _, created = state(KEYS[1], ARGV[2])
local ver = redis.call('HINCRBY', KEYS[1], 'ver', 1)
redis.call('PUBLISH', ARGV[1], epoch .. ' ' .. ver .. ' ' .. ARGV[3] .. ' ' .. ARGV[4])
return {epoch, tostring(ver), created}
"""
)

_RENEW = (
    _NEW_STATE
    + """
-- KEYS: state, members, this instance's live key   ARGV: instance id, epoch, seen version, lease ms, fresh epoch.
-- Returns {1 renewed | 0 refused (changes were missed: nothing extended), epoch, ver}.
local epoch, ver = state(KEYS[1], ARGV[5])
if ARGV[2] ~= epoch or tonumber(ARGV[3]) < ver then return {0, epoch, tostring(ver)} end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[4])
return {1, epoch, tostring(ver)}
"""
)

_PENDING = """
-- KEYS: state, members   ARGV: prefix, epoch, version, own instance id.
-- Returns how many other live instances have not acknowledged the version, or -1 if the state was replaced
-- meanwhile (a flush): then no acknowledgement can be trusted.
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[2] then return -1 end
local members = redis.call('HGETALL', KEYS[2])
local pending = 0
for i = 1, #members, 2 do
  local id = members[i]
  if id ~= ARGV[4] then
    if redis.call('EXISTS', ARGV[1] .. 'dir:live:' .. id) == 0 then
      redis.call('HDEL', KEYS[2], id)
    elseif tonumber(members[i + 1]) < tonumber(ARGV[3]) then
      pending = pending + 1
    end
  end
end
return pending
"""

_LEAVE = """
-- KEYS: members, live key   ARGV: instance id
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
"""


class RedisCacheCoherence:
    """``CacheCoherence`` through Redis; ``start()`` it, ``aclose()`` it (it does not close the client)."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        on_invalidate: Callable[[EntityRef], None],
        on_clear: Callable[[], None],
        lease_s: float = DEFAULT_LEASE_S,
    ) -> None:
        if lease_s <= 4 * _LEASE_MARGIN_S:
            raise ValueError(f"lease_s must be > {4 * _LEASE_MARGIN_S}")
        self.instance_id = uuid.uuid4().hex
        self._redis = redis
        self._prefix = prefix
        self._on_invalidate = on_invalidate
        self._on_clear = on_clear
        self.lease_s = lease_s
        self._state_key = f"{prefix}dir:state"
        self._members_key = f"{prefix}dir:members"
        self._live_key = f"{prefix}dir:live:{self.instance_id}"
        self._channel = f"{prefix}dir:changes"
        self._epoch = ""  # unknown until the first renewal (refused, adopted: the cache is empty then anyway)
        self._seen = 0
        self._lease_until = 0.0  # time.monotonic() instant
        self._renew_lock = asyncio.Lock()
        self._subscribed = asyncio.Event()
        self._unannounced: set[EntityRef] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._announce_script = redis.register_script(_ANNOUNCE)
        self._renew_script = redis.register_script(_RENEW)
        self._pending_script = redis.register_script(_PENDING)
        self._leave_script = redis.register_script(_LEAVE)

    # -- the port ---------------------------------------------------------------------------------------------------

    def cache_usable(self) -> bool:
        return time.monotonic() < self._lease_until

    async def announce(self, ref: EntityRef) -> None:
        """Publish a committed change, then wait (at most ``lease_s``) until no other instance can serve the old
        state. Never raises: if Redis cannot be reached, waiting out the lease is what makes the change visible
        to every instance that cannot reach it either (see docs/deployment.md for the one case it does not cover).
        """
        try:
            reply = await self._announce_script(
                keys=[self._state_key], args=[self._channel, uuid.uuid4().hex, ref.type.value, ref.id]
            )
        except (RedisError, OSError) as exc:
            self._unannounced.add(ref)
            log.warning("cannot announce the change of %s (%s); waiting out the cache lease", ref, exc)
            await asyncio.sleep(self.lease_s)
            return
        announced_at = time.monotonic()
        epoch, version, recreated = str(reply[0]), int(reply[1]), int(reply[2])
        await self._await_acknowledgements(epoch, version, announced_at + self.lease_s, bool(recreated))

    async def _await_acknowledgements(self, epoch: str, version: int, wait_until: float, recreated: bool) -> None:
        delay_s = 0.0005
        while True:
            remaining_s = wait_until - time.monotonic()
            if remaining_s <= 0:
                return  # whoever has not acknowledged has lost its lease by now
            pending = -1
            if not recreated:
                try:
                    pending = int(
                        await self._pending_script(
                            keys=[self._state_key, self._members_key],
                            args=[self._prefix, epoch, version, self.instance_id],
                        )
                    )
                except (RedisError, OSError) as exc:
                    log.warning("cannot check acknowledgements (%s); waiting out the cache lease", exc)
            if pending == 0:
                return
            if pending < 0:
                # The state was lost (flush) before or after the announcement: the members' acknowledgements
                # are gone too, so only the leases' end is certain.
                await asyncio.sleep(remaining_s)
                return
            await asyncio.sleep(min(delay_s, remaining_s))
            delay_s = min(delay_s * 2, 0.02)

    # -- lifecycle --------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen(), name="cache-coherence-listen"),
            asyncio.create_task(self._heartbeat(), name="cache-coherence-heartbeat"),
        ]

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._lease_until = 0.0
        # Leaving at once spares writers the wait for this instance's lease to run out.
        with contextlib.suppress(RedisError, OSError):
            await self._leave_script(keys=[self._members_key, self._live_key], args=[self.instance_id])

    # -- receiving changes ------------------------------------------------------------------------------------------

    async def _listen(self) -> None:
        backoff_s = 0.05
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                await self._confirmed(pubsub)
                self._subscribed.set()
                await self._renew()  # join at once rather than at the next heartbeat
                backoff_s = 0.05
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        await self._received(str(message["data"]))
            except Exception as exc:  # the listener must outlive any failure; it reconnects
                log.warning("cache invalidation channel lost (%s: %s); reconnecting", type(exc).__name__, exc)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 1.0)
            finally:
                self._subscribed.clear()
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()

    async def _confirmed(self, pubsub: Any) -> None:
        deadline = time.monotonic() + _SUBSCRIBE_TIMEOUT_S
        while time.monotonic() < deadline:
            message = await pubsub.get_message(timeout=0.5)
            if message is not None and message.get("type") == "subscribe":
                return
        raise RedisError(f"no confirmation of SUBSCRIBE {self._channel} within {_SUBSCRIBE_TIMEOUT_S} s")

    async def _received(self, data: str) -> None:
        ref: EntityRef | None = None
        try:
            epoch, version_text, type_value, entity_id = data.split(" ", 3)
            version = int(version_text)
            ref = EntityRef(EntityType(type_value), entity_id)
        except ValueError:
            # Not ours to parse (e.g. written by a newer ledgergate): forget everything rather than guess.
            log.warning("unexpected cache invalidation message %r; dropping the whole cache", data[:200])
            self._on_clear()
            return  # the next renewal is refused if a version was missed, and adopts it
        if epoch != self._epoch or version > self._seen + 1:
            self._on_clear()  # another epoch (state lost) or a gap: some change may have been missed
            self._epoch, self._seen = epoch, version
        else:
            self._on_invalidate(ref)
            self._seen = max(self._seen, version)
        try:
            await self._renew()  # acknowledges
        except (RedisError, OSError) as exc:
            log.warning("cannot acknowledge a cache invalidation (%s)", exc)

    # -- the lease --------------------------------------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 4)
            if not self._subscribed.is_set():
                continue  # not listening: the lease must lapse, so the cache is bypassed
            try:
                await self._renew()
                await self._announce_leftovers()
            except (RedisError, OSError) as exc:
                log.warning("cannot renew the cache lease (%s)", exc)

    async def _renew(self) -> None:
        async with self._renew_lock:
            for _ in range(_RENEW_ATTEMPTS):
                sent_at = time.monotonic()
                renewed, epoch, version = await self._renew_script(
                    keys=[self._state_key, self._members_key, self._live_key],
                    args=[self.instance_id, self._epoch, self._seen, int(self.lease_s * 1000), uuid.uuid4().hex],
                )
                if int(renewed) == 1:
                    if time.monotonic() >= self._lease_until:
                        # The lease lapsed (before or during this renewal): a writer that could not announce its
                        # change waited for that, so changes may have been missed without any gap showing.
                        self._on_clear()
                    self._lease_until = sent_at + self.lease_s - _LEASE_MARGIN_S
                    return
                # Changes were announced that this instance has not seen: nothing cached can be trusted.
                self._on_clear()
                same_epoch = str(epoch) == self._epoch
                self._epoch = str(epoch)
                self._seen = max(self._seen, int(version)) if same_epoch else int(version)

    async def _announce_leftovers(self) -> None:
        """Changes whose announcement failed (Redis was unreachable) are published once it is reachable again,
        for instances that kept their lease meanwhile (only this instance lost its connection)."""
        while self._unannounced:
            ref = self._unannounced.pop()
            try:
                await self._announce_script(
                    keys=[self._state_key], args=[self._channel, uuid.uuid4().hex, ref.type.value, ref.id]
                )
            except BaseException:
                self._unannounced.add(ref)
                raise
