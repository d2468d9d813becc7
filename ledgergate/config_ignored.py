"""The keys of a LiteLLM config that ledgergate would not read: each one becomes a warning.

A LiteLLM config must load unchanged, so these are warnings, not errors; but a setting that silently does
nothing (``num_retries``, ``fallbacks``, ``router_settings``, ``api_version``) misleads whoever wrote it, so
``serve`` and ``config check`` name every one. Keep these sets in step with what ``config*.py`` reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ledgergate.pricing_catalog import (
    CACHE_READ_COST_KEY,
    CACHE_WRITE_COST_KEY,
    INPUT_COST_KEY,
    OUTPUT_COST_KEY,
)

READ_TOP_LEVEL = frozenset({"model_list", "general_settings", "litellm_settings"})
READ_LITELLM_SETTINGS = frozenset({"max_budget", "budget_duration"})
READ_ALERTING = frozenset(
    {
        "webhook_url",
        "alert_thresholds",
        "webhook_timeout_s",
        "webhook_max_attempts",
        "webhook_retry_backoff_s",
        "resend_interval_s",
    }
)
READ_ENTRY = frozenset({"model_name", "litellm_params", "model_info"})
READ_LITELLM_PARAMS = frozenset({"model", "api_base", "api_key", "timeout", "extra_headers"})
READ_MODEL_INFO = frozenset(
    {
        "id",
        "base_model",
        "max_output_tokens",
        "max_tokens",
        "max_input_tokens",
        "max_input_tokens_per_image",
        INPUT_COST_KEY,
        OUTPUT_COST_KEY,
        CACHE_READ_COST_KEY,
        CACHE_WRITE_COST_KEY,
    }
)
# Why a well-known key does nothing yet, and what to use instead when there is something.
_HINTS = {
    "router_settings": "routing, retries and fallbacks are not supported yet: one deployment serves each request",
    "litellm_settings.num_retries": "retries are not supported yet",
    "litellm_settings.fallbacks": "fallbacks are not supported yet",
    "litellm_settings.request_timeout": "use general_settings.upstream_timeout_s",
    "litellm_params.api_version": "Azure is not supported natively yet",
    "litellm_params.rpm": "set rpm_limit on a key, team or user instead",
    "litellm_params.tpm": "set tpm_limit on a key, team or user instead",
    "litellm_params.num_retries": "retries are not supported yet",
    "general_settings.alerting": "LiteLLM's alerting list; budget alerts are the general_settings.alerting mapping",
}
_DEFAULT_HINT = "ledgergate does not read it"


def _unread(values: Any, read: frozenset[str]) -> list[str]:
    return [str(key) for key in values if key not in read] if isinstance(values, Mapping) else []


def _warning(path: str, places: Iterable[str] = ()) -> str:
    generic = path.removeprefix("model_list[].")
    hint = _HINTS.get(generic)
    if generic.startswith("litellm_params.") and generic.split(".", 1)[1].startswith(("aws_", "vertex_")):
        hint = "Bedrock and Vertex AI are not supported natively yet"
    where = f" (model_name {', '.join(places)})" if places else ""
    return f"{path}{where}: ignored, {hint or _DEFAULT_HINT}"


def ignored_keys(document: Mapping[str, Any], read_general_settings: frozenset[str]) -> list[str]:
    """One warning per key ledgergate would ignore; a key ignored in several model_list entries is one warning
    naming them all."""
    warnings = [_warning(key) for key in _unread(document, READ_TOP_LEVEL)]
    general = document.get("general_settings")
    warnings += [_warning(f"general_settings.{key}") for key in _unread(general, read_general_settings)]
    if isinstance(general, Mapping):
        alerting = general.get("alerting")
        if isinstance(alerting, Mapping):
            warnings += [_warning(f"general_settings.alerting.{key}") for key in _unread(alerting, READ_ALERTING)]
        elif alerting is not None:
            warnings.append(_warning("general_settings.alerting"))
    litellm_settings = document.get("litellm_settings")
    warnings += [_warning(f"litellm_settings.{key}") for key in _unread(litellm_settings, READ_LITELLM_SETTINGS)]
    per_entry: dict[str, list[str]] = {}
    model_list = document.get("model_list")
    for index, entry in enumerate(model_list if isinstance(model_list, list) else []):
        if not isinstance(entry, Mapping):
            continue
        name = repr(entry.get("model_name", f"#{index}"))
        for section, read in (("litellm_params", READ_LITELLM_PARAMS), ("model_info", READ_MODEL_INFO)):
            for key in _unread(entry.get(section), read):
                per_entry.setdefault(f"model_list[].{section}.{key}", []).append(name)
        for key in _unread(entry, READ_ENTRY):
            per_entry.setdefault(f"model_list[].{key}", []).append(name)
    warnings += [_warning(path, names) for path, names in per_entry.items()]
    return warnings
