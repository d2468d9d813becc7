"""Stateful test of issue 12's rule "nobody grants what they do not hold", through the real admin HTTP API.

Random principals (the master key, a proxy admin, a proxy admin viewer, an internal user, the admins of teams A
and B, a plain member of A, and every key any of them managed to issue) make random admin calls: member add /
update / delete, key generate / update / block / unblock, user new / update, team spend resets. After every call
the gateway's state is read back with the master key and compared with the state before: any key or user that
gained a role, a team, the use of a model, a tag or freedom from a block must have gained it from a caller who
held it.

The model also knows who holds each key's secret: whoever issued it (a key a team admin issues for a member stays
in the team admin's hands). So after every call, whoever made it, every key a non-proxy-admin issued or rebound
must have no more power than its issuer had at that moment (review a1: a proxy admin later promoting the key's
user must not promote the key). The app runs in-process on SQLite (one database per example).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from ledgergate.app import create_app
from ledgergate.config import load_config
from ledgergate.container import Container, build_container
from ledgergate.domain.charging import EntityType
from ledgergate.domain.memberships import members_of
from tests.api.entities.authz_model import RANKS, Authority, State, allowed, check_gains, key_ceiling
from tests.support.gateway import CHAT_MODEL, FLAT_MODEL, MASTER_KEY, gateway_config

T = TypeVar("T")
TEAMS = ("team-a", "team-b")
TAGS = ("tag-a", "tag-b", "tag-free")
SEED_USERS = {
    "root": "proxy_admin",
    "watcher": "proxy_admin_viewer",
    "intern": "internal_user",
    "lead-a": "internal_user",
    "lead-b": "internal_user",
    "member-a": "internal_user",
}
MEMBER_ROLES = ("user", "admin")
# Principals by name (a seed user's first key; "issued": any key issued during the run), so that the interesting
# ones (team admins) act often; keys to act on by kind, so that the same few keys are hit again and again.
ACTORS = ("master", "root", "watcher", "intern", "lead-a", "lead-b", "member-a", "issued", "issued")
KEY_KINDS = ("team-a", "team-a", "team-b", "personal", "any")
Who = tuple[str, int]
KeyPick = tuple[str, int]
PICK = st.integers(min_value=0, max_value=10_000)
WHO = st.tuples(st.sampled_from(ACTORS), PICK)
KEY = st.tuples(st.sampled_from(KEY_KINDS), PICK)
MODEL_LISTS = st.sampled_from([[], [FLAT_MODEL], [CHAT_MODEL], [FLAT_MODEL, CHAT_MODEL], ["all-proxy-models"]])
TAG_LISTS = st.lists(st.sampled_from(TAGS), max_size=2, unique=True)


class AuthzMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.workdir = Path(tempfile.mkdtemp(prefix="authz-machine-"))
        self.container: Container | None = None
        self.client: httpx.AsyncClient | None = None
        self.secrets: dict[str, str] = {}  # token -> secret of every key issued in this run
        self.proxy_blocks: set[str] = set()  # keys a proxy admin blocked (the reference, not the gateway's record)
        # Keys issued or rebound by a non-proxy-admin (who holds their secret), with that issuer's power then.
        self.issuers: dict[str, Authority] = {}
        self.users: list[str] = list(SEED_USERS)
        self.counter = 0
        self.state: State
        self.seed_keys_by_user: dict[str, str] = {}
        self.seed_keys: frozenset[str] = frozenset()
        try:
            self.run(self._open())
        except BaseException:
            self.teardown()
            raise

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    async def _open(self) -> None:
        database = f"sqlite+aiosqlite:///{self.workdir / 'lg.db'}"
        path = self.workdir / "ledgergate.yaml"
        path.write_text(yaml.safe_dump(gateway_config("http://127.0.0.1:9/v1", database, "standard")))
        config = load_config(path, environ={})
        self.container = await build_container(config)
        app = create_app(lambda: build_container(config))
        app.state.container = self.container
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
        for user_id, role in SEED_USERS.items():
            user = await self._call(MASTER_KEY, "/user/new", {"user_id": user_id, "user_role": role}, must=True)
            self.secrets[user["token"]] = user["key"]
            self.seed_keys_by_user[user_id] = user["token"]
        await self._call(MASTER_KEY, "/tag/new", {"name": "tag-free", "max_budget": 1}, must=True)
        for team, lead in zip(TEAMS, ("lead-a", "lead-b"), strict=True):
            members = [{"user_id": lead, "role": "admin"}]
            body = {"team_id": team, "tags": [f"tag-{team[-1]}"], "members_with_roles": members}
            body["models"] = [FLAT_MODEL] if team == "team-a" else []
            await self._call(MASTER_KEY, "/team/new", body, must=True)
        member = {"team_id": "team-a", "member": {"user_id": "member-a"}}
        await self._call(MASTER_KEY, "/team/member_add", member, must=True)
        key = await self._call(MASTER_KEY, "/key/generate", {"team_id": "team-a", "user_id": "member-a"}, must=True)
        self.secrets[key["token"]] = key["key"]
        self.seed_keys_by_user["member-a"] = key["token"]  # member-a acts with its team key
        self.seed_keys = frozenset(self.secrets)
        self.state = await self._state()

    async def _call(self, secret: str, path: str, body: dict[str, Any], *, must: bool = False) -> Any:
        assert self.client is not None
        response = await self.client.post(path, json=body, headers={"authorization": f"Bearer {secret}"})
        assert response.status_code < 500, response.text
        assert response.status_code == 200 or not must, f"{path}: {response.text}"
        return response.json() if response.status_code == 200 else None

    async def _state(self) -> State:
        """The gateway's state as stored (read from its entity store: faster than three views per step)."""
        assert self.container is not None
        entities = self.container.entity_admin.entities
        users = await entities.list_all(EntityType.USER)
        teams = await entities.list_all(EntityType.TEAM)
        keys = await entities.list_all(EntityType.KEY)
        return State(
            users={u.id: str(u.extra.get("user_role") or "internal_user") for u in users},
            team_members={t.id: {str(m["user_id"]): str(m["role"]) for m in members_of(t)} for t in teams},
            team_models={t.id: allowed(list(t.models)) for t in teams},
            team_tags={t.id: frozenset(t.tags) for t in teams},
            keys={
                k.id: {
                    "user_id": k.user_id,
                    "team_id": k.team_id,
                    "models": list(k.models),
                    "tags": list(k.tags),
                    "blocked": k.blocked,
                    "ceiling": key_ceiling(k),
                }
                for k in keys
            },
        )

    def teardown(self) -> None:
        try:
            if self.client is not None:
                self.run(self.client.aclose())
            if self.container is not None:
                self.run(self.container.aclose())
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ---- acting ----------------------------------------------------------------------------------------------------

    def _act(self, who: Who, path: str, body: dict[str, Any]) -> None:
        self.run(self._checked(who, path, body))

    async def _checked(self, who: Who, path: str, body: dict[str, Any]) -> None:
        """Make the call as principal ``who``, then check every gain against what that principal held."""
        before = self.state
        token = self._principal(who, before)
        secret = MASTER_KEY if token is None else self.secrets[token]
        actor = None if token is None else before.authority(token)
        result = await self._call(secret, path, body)
        after = self.state = await self._state()
        if result is None:
            assert after == before, f"refused {path} changed the state"  # nothing half-written
            return
        if isinstance(result, dict) and "key" in result and "token" in result:
            self.secrets[result["token"]] = result["key"]
        if actor is not None:
            check_gains(actor, before, after, path, self.proxy_blocks)
        self._record_blocks(path, body, actor)
        self._record_issuer(path, body, result, actor)
        print("ISSUERS", path, len(self.issuers), actor)
        for token, issuer in self.issuers.items():
            if token in after.keys:
                power = after.authority(token)
                where = f"{path}: key {token[:8]} issued by {issuer} now has {power}"
                assert power.rank <= issuer.rank and power.admin_of <= issuer.admin_of, where

    def _record_issuer(self, path: str, body: dict[str, Any], result: Any, actor: Authority | None) -> None:
        """Who holds the secret of a key created or rebound by this call, and what they could do then."""
        if path == "/key/generate":
            token = str(result["token"])
        elif path == "/key/update" and ("user_id" in body or "team_id" in body):
            token = str(body["key"])
        else:
            return
        if actor is None or actor.is_proxy_admin:
            self.issuers.pop(token, None)  # a proxy admin's key follows its user
        else:
            self.issuers[token] = actor

    def _record_blocks(self, path: str, body: dict[str, Any], actor: Authority | None) -> None:
        token = str(body.get("key"))
        blocking = path == "/key/block" or (path == "/key/update" and body.get("blocked") is True)
        if blocking and (actor is None or actor.is_proxy_admin):
            self.proxy_blocks.add(token)
        if path == "/key/unblock" or (path == "/key/update" and "blocked" in body and not body["blocked"]):
            self.proxy_blocks.discard(token)

    def _user(self, pick: int) -> str:
        return self.users[pick % len(self.users)]

    def _principal(self, who: Who, state: State) -> str | None:
        """The token of the acting key (``None``: the master key)."""
        name, pick = who
        if name == "master":
            return None
        live = [t for t in self.secrets if t in state.keys]
        if name == "issued":
            issued = sorted(t for t in live if t not in self.seed_keys)
            return issued[pick % len(issued)] if issued else None
        return self.seed_keys_by_user[name]

    def _key(self, pick: KeyPick) -> str:
        kind, index = pick
        tokens = sorted(self.secrets)
        keys = self.state.keys
        if kind == "personal":
            tokens = [t for t in tokens if t in keys and keys[t]["team_id"] is None] or tokens
        elif kind != "any":
            tokens = [t for t in tokens if t in keys and keys[t]["team_id"] == kind] or tokens
        return tokens[index % len(tokens)]

    @rule(who=WHO, team=st.sampled_from(TEAMS), user=PICK, fresh=st.booleans(), role=st.sampled_from(MEMBER_ROLES))
    def member_add(self, who: Who, team: str, user: int, fresh: bool, role: str) -> None:
        self.counter += 1
        user_id = f"fresh-{self.counter}" if fresh else self._user(user)
        if fresh:
            self.users.append(user_id)
        self._act(who, "/team/member_add", {"team_id": team, "member": {"user_id": user_id, "role": role}})

    @rule(who=WHO, team=st.sampled_from(TEAMS), user=PICK, role=st.sampled_from(MEMBER_ROLES))
    def member_update(self, who: Who, team: str, user: int, role: str) -> None:
        self._act(who, "/team/member_update", {"team_id": team, "user_id": self._user(user), "role": role})

    @rule(who=WHO, team=st.sampled_from(TEAMS), user=PICK)
    def member_delete(self, who: Who, team: str, user: int) -> None:
        self._act(who, "/team/member_delete", {"team_id": team, "user_id": self._user(user)})

    @rule(
        who=WHO,
        team=st.sampled_from([*TEAMS, None]),
        user=st.none() | PICK,
        models=st.none() | MODEL_LISTS,
        tags=st.none() | TAG_LISTS,
    )
    def key_generate(self, who: Who, team: str | None, user: int | None, models: Any, tags: Any) -> None:
        body: dict[str, Any] = {"team_id": team, "user_id": None if user is None else self._user(user)}
        body |= {name: value for name, value in (("models", models), ("tags", tags)) if value is not None}
        self._act(who, "/key/generate", body)

    @rule(
        who=WHO,
        key=KEY,
        change=st.one_of(
            st.builds(lambda u: ("user_id", u), PICK),
            st.builds(lambda t: ("team_id", t), st.sampled_from([*TEAMS, None])),
            st.builds(lambda m: ("models", m), MODEL_LISTS),
            st.builds(lambda t: ("tags", t), TAG_LISTS),
            st.builds(lambda b: ("blocked", b), st.sampled_from([True, False, None])),
        ),
    )
    def key_update(self, who: Who, key: KeyPick, change: tuple[str, Any]) -> None:
        field, value = change
        if field == "user_id":
            value = self._user(value)
        self._act(who, "/key/update", {"key": self._key(key), field: value})

    @rule(who=WHO, key=KEY)
    def key_delete(self, who: Who, key: KeyPick) -> None:
        token = self._key(key)
        if token not in self.seed_keys:  # the seed users keep acting with their first key
            self._act(who, "/key/delete", {"keys": [token]})

    @rule(who=WHO, key=KEY)
    def key_reset_spend(self, who: Who, key: KeyPick) -> None:
        self._act(who, f"/key/{self._key(key)}/reset_spend", {"reset_to": 0})

    @rule(who=WHO, key=KEY, block=st.booleans())
    def key_block(self, who: Who, key: KeyPick, block: bool) -> None:
        self._act(who, "/key/block" if block else "/key/unblock", {"key": self._key(key)})

    @rule(who=WHO, user=PICK, role=st.sampled_from(sorted(RANKS)))
    def user_update(self, who: Who, user: int, role: str) -> None:
        self._act(who, "/user/update", {"user_id": self._user(user), "user_role": role})

    @rule(pick=PICK, role=st.sampled_from(["proxy_admin", "proxy_admin_viewer"]), team=st.sampled_from(TEAMS))
    def master_promotes_the_user_of_an_issued_key(self, pick: int, role: str, team: str) -> None:
        """A proxy admin's legitimate promotion of a key's user (a role, a team admin seat): a key a team admin
        issued for that user, whose secret the team admin holds, must not rise with it (review a1)."""
        issued = sorted(self.issuers) or sorted(self.secrets)
        user_id = self.state.keys.get(issued[pick % len(issued)], {}).get("user_id")
        if user_id is None:
            return
        self._act(("master", 0), "/user/update", {"user_id": user_id, "user_role": role})
        seat = {"team_id": team, "user_id": user_id, "role": "admin"}
        if user_id in self.state.team_members.get(team, {}):
            self._act(("master", 0), "/team/member_update", seat)
        else:
            member = {"user_id": user_id, "role": "admin"}
            self._act(("master", 0), "/team/member_add", {"team_id": team, "member": member})

    @rule(lead=st.sampled_from(("lead-a", "lead-b")), for_member=st.booleans())
    def team_admin_issues_a_key(self, lead: str, for_member: bool) -> None:
        """What a random key_generate rarely hits: a team admin issues a key in their team for themselves or for
        a plain member, and keeps its secret (review a1)."""
        team = "team-a" if lead == "lead-a" else "team-b"
        user_id = "member-a" if for_member and lead == "lead-a" else None
        self._act((lead, 0), "/key/generate", {"team_id": team, "user_id": user_id})

    @rule(who=WHO, role=st.sampled_from(sorted(RANKS)))
    def user_new(self, who: Who, role: str) -> None:
        self.counter += 1
        self.users.append(f"new-{self.counter}")
        self._act(who, "/user/new", {"user_id": f"new-{self.counter}", "user_role": role})

    @rule(who=WHO, team=st.sampled_from(TEAMS))
    def team_reset_spend(self, who: Who, team: str) -> None:
        self._act(who, f"/team/{team}/reset_spend", {"reset_to": 0})


def test_no_principal_gains_what_its_granter_did_not_hold() -> None:
    """Random sequences of admin calls by random principals never escalate (issue 12)."""
    run_state_machine_as_test(
        AuthzMachine,
        settings=settings(
            max_examples=15,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
