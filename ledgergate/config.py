"""Loading a LiteLLM-style YAML config (``general_settings`` + ``model_list``) into frozen settings.

An existing LiteLLM config must load unchanged, so unknown keys are tolerated; every value that is read is
type-checked, and every error names the file, the entry and the rule it broke.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from ledgergate.config_values import ENV_REFERENCE_PREFIX as ENV_REFERENCE_PREFIX  # re-exported
from ledgergate.config_values import ConfigError as ConfigError  # re-exported: callers import it from here
from ledgergate.config_values import Section, expand_env
from ledgergate.deployments import Deployment
from ledgergate.domain.alerts import DEFAULT_ALERT_THRESHOLDS, parse_alert_thresholds
from ledgergate.domain.errors import InvalidInput
from ledgergate.domain.pricing import TokenPrices
from ledgergate.pricing_catalog import (
    INPUT_COST_KEY,
    OUTPUT_COST_KEY,
    InvalidPriceError,
    known_max_output_tokens,
    resolve_prices,
)

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./ledgergate.db"
ENV_OVERRIDES = {
    "master_key": "LEDGERGATE_MASTER_KEY",
    "database_url": "LEDGERGATE_DATABASE_URL",
    "redis_url": "LEDGERGATE_REDIS_URL",
}
# LiteLLM provider prefixes of litellm_params.model; anything else is an OpenAI-compatible model name.
DEFAULT_API_BASES: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com/v1",
    "groq": "https://api.groq.com/openai/v1",
    "mistral": "https://api.mistral.ai/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "together_ai": "https://api.together.xyz/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "xai": "https://api.x.ai/v1",
    "fireworks_ai": "https://api.fireworks.ai/inference/v1",
    "perplexity": "https://api.perplexity.ai",
    "cerebras": "https://api.cerebras.ai/v1",
    "gemini": "https://generativelanguage.googleapis.com/v1beta/openai",
    "ollama": "http://localhost:11434/v1",
}
# Known prefixes with no public endpoint to default to: the config must give their api_base.
_WITHOUT_DEFAULT_BASE = {"azure", "azure_ai", "bedrock", "vertex_ai", "cohere", "databricks", "huggingface"}
KNOWN_PROVIDERS = frozenset(DEFAULT_API_BASES) | _WITHOUT_DEFAULT_BASE | {"hosted_vllm", "vllm"}
DEFAULT_PROVIDER = "openai"
DEMO_API_BASE = "demo"  # sentinel: the server swaps in its own loopback mock endpoint
DEMO_MODEL_NAMES = ("demo", "gpt-4o-mini")
DEMO_PRICES = TokenPrices(input_nanos_per_mtok=150_000_000, output_nanos_per_mtok=600_000_000)
DEMO_MAX_OUTPUT_TOKENS = 1024

DEFAULT_REDIS_KEY_PREFIX = "lg"
_REDIS_KEY_PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,64}")

# The entities that may label the request, token and spend metrics; every label multiplies their series.
METRICS_LABEL_CHOICES = ("model", "key", "team", "tag", "customer")
DEFAULT_METRICS_LABELS = ("model", "team")

BudgetMode = Literal["standard", "strict"]
CounterFallback = Literal["fail_closed", "database"]
MetricsAuth = Literal["admin", "none"]  # admin: a proxy admin's or proxy admin viewer's key; none: anyone

# Request bodies are refused with 413 past these sizes, counted while they arrive (api/body_limits.py).
DEFAULT_MAX_REQUEST_BODY_BYTES = 1024 * 1024  # admin API and dashboard: entities are small
DEFAULT_MAX_LLM_REQUEST_BODY_BYTES = 32 * 1024 * 1024  # LLM routes: long prompts, base64 images


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    master_key: str | None = None
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    redis_key_prefix: str = DEFAULT_REDIS_KEY_PREFIX  # namespace of every Redis key; instances sharing it cooperate
    budget_mode: BudgetMode = "standard"
    timezone: str = "UTC"
    allow_client_tags: bool = False
    hold_ttl_s: float = 900.0
    default_max_output_tokens: int = 4096
    counter_fallback: CounterFallback = "fail_closed"
    max_budget: float | None = None  # USD, global proxy budget, as written in the config
    budget_duration: str | None = None  # unparsed window grammar of the global proxy budget
    alerting_webhook_url: str | None = None
    # general_settings.alerting.*: budget alerts (see docs/configuration.md)
    alert_thresholds: tuple[float, ...] = DEFAULT_ALERT_THRESHOLDS
    alerting_webhook_timeout_s: float = 10.0
    alerting_webhook_max_attempts: int = 5
    alerting_webhook_backoff_s: float = 1.0
    alerting_resend_interval_s: float = 300.0
    upstream_timeout_s: float = 600.0
    # GET /metrics (see docs/configuration.md#metrics)
    metrics_labels: tuple[str, ...] = DEFAULT_METRICS_LABELS
    metrics_top_n: int = 20
    metrics_auth: MetricsAuth = "admin"  # per-team spend is not for anonymous readers
    max_request_body_bytes: int = DEFAULT_MAX_REQUEST_BODY_BYTES
    max_llm_request_body_bytes: int = DEFAULT_MAX_LLM_REQUEST_BODY_BYTES
    extra: dict[str, Any] = field(default_factory=dict)  # general_settings keys ledgergate does not use


# general_settings keys read into typed fields; every other key lands in GatewaySettings.extra.
# The alert_* and alerting_* fields are read from the `alerting` mapping, not from general_settings itself.
_TYPED_SETTINGS = frozenset(
    name for name in GatewaySettings.__dataclass_fields__ if not name.startswith("alert") and name != "extra"
)
_KNOWN_SETTINGS = _TYPED_SETTINGS | {"alerting", "metrics_require_auth"}


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    settings: GatewaySettings
    deployments: tuple[Deployment, ...]


def normalise_database_url(url: str) -> str:
    """The async SQLAlchemy URL for a PostgreSQL or SQLite URL (drivers: asyncpg, aiosqlite)."""
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        return f"postgresql+asyncpg://{rest}"
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        return f"sqlite+aiosqlite://{rest}"
    raise ConfigError(f"database_url scheme {scheme!r} is not supported; use postgresql://... or sqlite:///...")


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"general_settings.timezone: unknown IANA time zone {name!r}") from exc
    return name


def _alerting_settings(section: Section) -> dict[str, Any]:
    """The GatewaySettings fields of ``general_settings.alerting``."""
    fields: dict[str, Any] = {"alerting_webhook_url": section.text("webhook_url")}
    if section.values.get("alert_thresholds") is not None:
        try:
            fields["alert_thresholds"] = parse_alert_thresholds(section.values["alert_thresholds"])
        except InvalidInput as exc:
            raise ConfigError(f"{section.where}.{exc}") from exc
    for key, name in (
        ("webhook_timeout_s", "alerting_webhook_timeout_s"),
        ("webhook_retry_backoff_s", "alerting_webhook_backoff_s"),
        ("resend_interval_s", "alerting_resend_interval_s"),
    ):
        value = section.number(key, None, positive=True)
        if value is not None:
            fields[name] = value
    if (attempts := section.positive_int("webhook_max_attempts")) is not None:
        fields["alerting_webhook_max_attempts"] = attempts
    return fields


def _metrics_labels(section: Section) -> tuple[str, ...]:
    value = section.values.get("metrics_labels")
    if value is None:
        return DEFAULT_METRICS_LABELS
    allowed = ", ".join(METRICS_LABEL_CHOICES)
    if not isinstance(value, list) or any(label not in METRICS_LABEL_CHOICES for label in value):
        raise section.fail("metrics_labels", f"must be a list of {allowed}, got {value!r}")
    return tuple(dict.fromkeys(value))


def _metrics_auth(section: Section) -> MetricsAuth:
    """``metrics_auth``; the older ``metrics_require_auth`` flag still works when ``metrics_auth`` is not given."""
    legacy = section.flag("metrics_require_auth", True)
    if section.values.get("metrics_auth") is None and "metrics_require_auth" in section.values:
        return "admin" if legacy else "none"
    return cast(MetricsAuth, section.choice("metrics_auth", ("admin", "none")))


def _parse_settings(
    general: Mapping[str, Any], litellm_settings: Mapping[str, Any], environ: Mapping[str, str]
) -> GatewaySettings:
    section = Section(general, "general_settings")
    # LiteLLM puts the global proxy budget under litellm_settings; general_settings wins when both set it.
    budget_source = general if "max_budget" in general or "budget_duration" in general else litellm_settings
    budget = Section(budget_source, "general_settings" if budget_source is general else "litellm_settings")
    overrides = {key: environ.get(variable) or None for key, variable in ENV_OVERRIDES.items()}
    database_url = overrides["database_url"] or section.text("database_url", DEFAULT_DATABASE_URL)
    redis_url = overrides["redis_url"] or section.text("redis_url")
    if redis_url and not redis_url.lower().startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"redis_url {redis_url!r} must start with redis://, rediss:// or unix://")
    redis_key_prefix = cast(str, section.text("redis_key_prefix", DEFAULT_REDIS_KEY_PREFIX))
    if not _REDIS_KEY_PREFIX.fullmatch(redis_key_prefix):
        raise section.fail(
            "redis_key_prefix", f"must be 1-64 letters, digits, '_', '.' or '-', got {redis_key_prefix!r}"
        )
    counter_fallback = cast(CounterFallback, section.choice("counter_fallback", ("fail_closed", "database")))
    normalised_database_url = normalise_database_url(cast(str, database_url))
    if counter_fallback == "database" and (not redis_url or not normalised_database_url.startswith("postgresql")):
        raise section.fail(
            "counter_fallback",
            "'database' (admission through PostgreSQL row locks while Redis is unreachable) needs a redis_url "
            "(the counter store it falls back from) and a postgresql:// database_url (the one it falls back to)",
        )
    extra = {key: value for key, value in general.items() if key not in _KNOWN_SETTINGS}
    alerting = general.get("alerting")
    alerting_fields: dict[str, Any] = {}
    if isinstance(alerting, Mapping):
        alerting_fields = _alerting_settings(Section(alerting, "general_settings.alerting"))
    elif alerting is not None:
        extra["alerting"] = alerting  # LiteLLM's `alerting: ["slack"]` list: tolerated, not used
    return GatewaySettings(
        master_key=overrides["master_key"] or section.text("master_key"),
        database_url=normalised_database_url,
        redis_url=redis_url,
        redis_key_prefix=redis_key_prefix,
        budget_mode=cast(BudgetMode, section.choice("budget_mode", ("standard", "strict"))),
        timezone=_check_timezone(cast(str, section.text("timezone", "UTC"))),
        allow_client_tags=section.flag("allow_client_tags", False),
        hold_ttl_s=cast(float, section.number("hold_ttl_s", 900.0, positive=True)),
        default_max_output_tokens=section.positive_int("default_max_output_tokens") or 4096,
        counter_fallback=counter_fallback,
        max_budget=budget.number("max_budget", None, positive=False),
        budget_duration=budget.text("budget_duration"),
        **alerting_fields,
        upstream_timeout_s=cast(float, section.number("upstream_timeout_s", 600.0, positive=True)),
        metrics_labels=_metrics_labels(section),
        metrics_top_n=section.count("metrics_top_n", 20),
        metrics_auth=_metrics_auth(section),
        max_request_body_bytes=section.positive_int("max_request_body_bytes") or DEFAULT_MAX_REQUEST_BODY_BYTES,
        max_llm_request_body_bytes=(
            section.positive_int("max_llm_request_body_bytes") or DEFAULT_MAX_LLM_REQUEST_BODY_BYTES
        ),
        extra=extra,
    )


def _split_known_prefix(model_ref: str) -> tuple[str, str] | None:
    prefix, separator, rest = model_ref.partition("/")
    return (prefix.lower(), rest) if separator and rest and prefix.lower() in KNOWN_PROVIDERS else None


def split_provider(litellm_model: str) -> tuple[str, str]:
    """``"anthropic/claude-x"`` -> ``("anthropic", "claude-x")``; an unknown prefix stays in the name."""
    return _split_known_prefix(litellm_model) or (DEFAULT_PROVIDER, litellm_model)


def _string_headers(headers: Mapping[str, Any], section: Section) -> dict[str, str]:
    for name, value in headers.items():
        if not isinstance(value, str):
            raise section.fail(f"extra_headers.{name}", f"must be a string, got {value!r}")
    return {str(name): value for name, value in headers.items()}


def _parse_deployment(raw_entry: Any, index: int, settings: GatewaySettings, environ: Mapping[str, str]) -> Deployment:
    where = f"model_list[{index}]"
    if not isinstance(raw_entry, Mapping):
        raise ConfigError(f"{where}: must be a mapping with model_name and litellm_params")
    model_name = raw_entry.get("model_name")
    if not isinstance(model_name, str) or not model_name.strip():
        raise ConfigError(f"{where}.model_name: must be a non-empty string, got {model_name!r}")
    where = f"model_list[{index}] (model_name {model_name!r})"
    entry = expand_env(raw_entry, where, environ)
    top = Section(entry, where)
    params = Section(top.mapping("litellm_params"), f"{where}.litellm_params")
    model_info = top.mapping("model_info")
    info = Section(model_info, f"{where}.model_info")
    litellm_model = params.text("model")
    if litellm_model is None:
        raise params.fail("model", "is required (e.g. openai/gpt-4o)")
    provider, upstream_model = split_provider(litellm_model)
    api_base = params.text("api_base") or DEFAULT_API_BASES.get(provider)
    if api_base is None:
        raise params.fail("api_base", f"is required for provider {provider!r} (it has no default endpoint)")
    # LiteLLM's model_info.base_model names the priced model when the upstream name is an alias (Azure).
    base_model = info.text("base_model")
    price_ref = (_split_known_prefix(base_model) or (provider, base_model)) if base_model else None
    price_provider, price_model = price_ref or (provider, upstream_model)
    try:
        prices = resolve_prices(model_info, price_provider, price_model)
    except InvalidPriceError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    if prices is None:
        given = [key for key in (INPUT_COST_KEY, OUTPUT_COST_KEY) if model_info.get(key) is not None]
        found = f"only {given[0]} in model_info" if given else "no price in model_info"
        raise ConfigError(
            f"deployment {model_name!r} (model {litellm_model!r}): {found} and none in genai-prices; "
            f"set model_info.{INPUT_COST_KEY}/{OUTPUT_COST_KEY} (0 for free)"
        )
    max_output_tokens = (
        info.positive_int("max_output_tokens")
        or info.positive_int("max_tokens")
        or known_max_output_tokens(price_provider, price_model)
        or settings.default_max_output_tokens
    )
    deployment_id = model_info.get("id")
    if deployment_id is not None and (not isinstance(deployment_id, str | int) or isinstance(deployment_id, bool)):
        raise info.fail("id", f"must be a string or an integer, got {deployment_id!r}")
    return Deployment(
        model_name=model_name.strip(),
        provider=provider,
        upstream_model=upstream_model,
        api_base=api_base.rstrip("/"),
        api_key=params.text("api_key"),
        prices=prices,
        max_output_tokens=max_output_tokens,
        timeout_s=cast(float, params.number("timeout", settings.upstream_timeout_s, positive=True)),
        deployment_id=str(deployment_id) if deployment_id is not None else f"{model_name.strip()}#{index}",
        extra_headers=_string_headers(params.mapping("extra_headers"), params),
    )


def _demo_deployments(configured_names: set[str]) -> list[Deployment]:
    """The offline mock models, skipping a name the config already routes so demo never shadows it."""
    return [
        Deployment(
            model_name=name,
            provider=DEFAULT_PROVIDER,
            upstream_model=name,
            api_base=DEMO_API_BASE,
            api_key=None,
            prices=DEMO_PRICES,
            max_output_tokens=DEMO_MAX_OUTPUT_TOKENS,
            deployment_id=f"{name}#demo",
        )
        for name in DEMO_MODEL_NAMES
        if name not in configured_names
    ]


def _read_document(path: Path) -> Mapping[str, Any]:
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror or exc}") from exc
    try:
        document = yaml.safe_load(raw_bytes)  # bytes: YAML detects the encoding and rejects undecodable input
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}") from exc
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise ConfigError(f"the top level must be a mapping (general_settings, model_list), got {document!r:.60}")
    return document


def _build(document: Mapping[str, Any], demo: bool, environ: Mapping[str, str]) -> GatewayConfig:
    top = Section(document, "config")
    general = expand_env(top.mapping("general_settings"), "general_settings", environ)
    litellm_settings = expand_env(top.mapping("litellm_settings"), "litellm_settings", environ)
    settings = _parse_settings(general, litellm_settings, environ)
    model_list = document.get("model_list") or []
    if not isinstance(model_list, list):
        raise ConfigError(f"model_list: must be a list of deployments, got {type(model_list).__name__}")
    deployments = [_parse_deployment(entry, index, settings, environ) for index, entry in enumerate(model_list)]
    if demo:
        deployments += _demo_deployments({deployment.model_name for deployment in deployments})
    ids = [deployment.deployment_id for deployment in deployments]
    if duplicate_ids := sorted({deployment_id for deployment_id in ids if ids.count(deployment_id) > 1}):
        raise ConfigError(f"model_info.id {duplicate_ids[0]!r} is used by more than one deployment")
    return GatewayConfig(settings=settings, deployments=tuple(deployments))


def load_config(
    path: str | Path | None, *, demo: bool = False, environ: Mapping[str, str] | None = None
) -> GatewayConfig:
    """Load and validate the config at ``path`` (None: no file, defaults only); ``demo`` adds the mock models.

    Raises ``ConfigError`` whose message starts with the file it is about.
    """
    env = os.environ if environ is None else environ
    source = str(path) if path is not None else "<no config file>"
    try:
        document = _read_document(Path(path)) if path is not None else {}
        return _build(document, demo, env)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
