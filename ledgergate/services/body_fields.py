"""Which fields an admin body may carry: an unknown one is refused with the closest known name, and a LiteLLM field
ledgergate does not implement is refused with what to use instead (a silently dropped field is a silently
different entity: ``max_buget`` once created an unlimited key)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable

UNKNOWN_FIELD = "unknown_field"  # the error type of a field the body's model does not have
MAX_NAME_SHOWN = 64

# LiteLLM request fields ledgergate does not implement, with why and what to use. Refused on every admin body:
# accepting and ignoring them would leave a limit or a permission the client believes it set unenforced.
UNSUPPORTED_LITELLM_FIELDS: dict[str, str] = {
    "spend": "spend is derived from the ledger; use POST /<entity>/{id}/reset_spend (an audited adjustment)",
    "tpm_limit_type": "rate limits are always enforced as hard limits (best_effort_throughput is not implemented)",
    "rpm_limit_type": "rate limits are always enforced as hard limits (best_effort_throughput is not implemented)",
    "model_rpm_limit": "per-model rate limits are not implemented; use rpm_limit, or a key per model",
    "model_tpm_limit": "per-model rate limits are not implemented; use tpm_limit, or a key per model",
    "permissions": "key permissions are not implemented; restrict models with `models`",
    "allowed_routes": "route restrictions are not implemented; a key may call the LLM routes and its own info",
    "allowed_cache_controls": "prompt caching controls are not implemented",
    "guardrails": "guardrails are not implemented",
    "enforced_params": "enforced request params are not implemented",
    "aliases": "model aliases are not implemented; name the deployment in model_list instead",
    "config": "per-key config is not implemented; use the gateway config file",
    "object_permission": "object permissions (MCP, vector stores) are not implemented",
    "prompts": "prompt management is not implemented",
    "key_type": "key types are not implemented; restrict models with `models`",
    "send_invite_email": "invitation emails are not implemented",
    "sso_user_id": "SSO is not implemented",
    "organizations": "a user's organization follows from its teams; set organization_id on the team",
    "admins": "LiteLLM's legacy admins list is not implemented; use members_with_roles with role 'admin'",
    "members": "LiteLLM's legacy members list is not implemented; use members_with_roles",
    "team_member_permissions": "team member permissions are not implemented",
    "team_member_budget": "not implemented; give each member max_budget_in_team (/team/member_add)",
    "team_member_key_duration": "not implemented; set duration on each /key/generate",
    "model_aliases": "model aliases are not implemented; name the deployment in model_list instead",
    "max_budget_per_user": "not implemented; give each user its own max_budget",
    "budget_reset_at": "reset times follow from budget_duration (calendar periods); they cannot be set",
    "created_by": "set by the gateway from the caller's key",
    "updated_by": "set by the gateway from the caller's key",
}


def unknown_field_message(name: str, known: Iterable[str]) -> str:
    """``unknown field "max_buget" (did you mean "max_budget"?)``; the reason for a LiteLLM field not implemented."""
    if name in UNSUPPORTED_LITELLM_FIELDS:
        return f'field "{name}" is not supported by ledgergate: {UNSUPPORTED_LITELLM_FIELDS[name]}'
    if len(name) > MAX_NAME_SHOWN:  # no field is that long: neither echo nor compare a megabyte
        return f'unknown field "{name[:MAX_NAME_SHOWN]}..."'
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    hint = f' (did you mean "{close[0]}"?)' if close else ""
    return f'unknown field "{name}"{hint}'


def duplicate_json_key(raw: bytes) -> str | None:
    """The first key that appears twice in one object of the JSON document ``raw`` (at any depth); ``None`` when
    there is none or ``raw`` is not JSON (the body's own parser reports that). A JSON parser keeps the last of two
    equal keys, so ``{"max_budget": 0.01, "max_budget": null}`` would silently become an unlimited key."""
    duplicates: list[str] = []

    def pairs_hook(pairs: list[tuple[str, object]]) -> dict[str, object]:
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                duplicates.append(name)
            seen.add(name)
        return dict(pairs)

    try:
        json.loads(raw, object_pairs_hook=pairs_hook)
    except (ValueError, RecursionError):
        return None
    return duplicates[0][:MAX_NAME_SHOWN] if duplicates else None
