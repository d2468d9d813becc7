"""Loading a LiteLLM-style YAML config (``general_settings`` + ``model_list``) into frozen settings.

An existing LiteLLM config must load unchanged, so unknown keys are tolerated; every value that is read is
type-checked, and every error names the file, the entry and the rule it broke.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import yaml

from ledgergate import config_fields as read
from ledgergate.config_deployments import parse_deployment
from ledgergate.config_fields import DEFAULT_METRICS_LABELS as DEFAULT_METRICS_LABELS  # re-exported
from ledgergate.config_fields import DEFAULT_REDIS_KEY_PREFIX as DEFAULT_REDIS_KEY_PREFIX  # re-exported
from ledgergate.config_fields import METRICS_LABEL_CHOICES as METRICS_LABEL_CHOICES  # re-exported
from ledgergate.config_fields import MetricsAuth
from ledgergate.config_ignored import ignored_keys
from ledgergate.config_providers import DEFAULT_API_BASES as DEFAULT_API_BASES  # re-exported
from ledgergate.config_providers import DEFAULT_PROVIDER
from ledgergate.config_providers import KNOWN_PROVIDERS as KNOWN_PROVIDERS  # re-exported
from ledgergate.config_providers import split_provider as split_provider  # re-exported
from ledgergate.config_values import EMPTY, ConfigProblems, Section, expand_env
from ledgergate.config_values import ENV_REFERENCE_PREFIX as ENV_REFERENCE_PREFIX  # re-exported
from ledgergate.config_values import ConfigError as ConfigError  # re-exported: callers import it from here
from ledgergate.deployments import Deployment
from ledgergate.domain.alerts import DEFAULT_ALERT_THRESHOLDS
from ledgergate.domain.dashboard_sessions import DEFAULT_IDLE_TIMEOUT_S as DEFAULT_IDLE_S
from ledgergate.domain.dashboard_sessions import (
    DEFAULT_MAX_AGE_S,
    SECURE_COOKIE_MODES,
    SecureCookieMode,
)
from ledgergate.domain.errors import InvalidInput
from ledgergate.domain.output_caps import DEFAULT_MAX_N
from ledgergate.domain.pricing import TokenPrices
from ledgergate.domain.windows import parse_windows

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./ledgergate.db"
ENV_OVERRIDES = {
    "master_key": "LEDGERGATE_MASTER_KEY",
    "database_url": "LEDGERGATE_DATABASE_URL",
    "redis_url": "LEDGERGATE_REDIS_URL",
}
DEMO_API_BASE = "demo"  # sentinel: the server swaps in its own loopback mock endpoint
DEMO_MODEL_NAMES = ("demo", "gpt-4o-mini")
DEMO_PRICES = TokenPrices(input_nanos_per_mtok=150_000_000, output_nanos_per_mtok=600_000_000)
DEMO_MAX_OUTPUT_TOKENS = 1024

BudgetMode = Literal["standard", "strict"]
CounterFallback = Literal["fail_closed", "database"]

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
    max_n: int = DEFAULT_MAX_N  # most completions (``n``, ``best_of``) one request may ask for
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
    # The dashboard's session cookie (see docs/configuration.md#dashboard)
    dashboard_secure_cookies: SecureCookieMode = "auto"
    dashboard_session_idle_timeout_s: int = DEFAULT_IDLE_S
    dashboard_session_max_age_s: int = DEFAULT_MAX_AGE_S
    # Where spend records wait while the database is down (docs/decisions/0009); None: the default of
    # ``ledger_spill_directory``.
    ledger_spill_dir: str | None = None
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
    warnings: tuple[str, ...] = ()  # every key of the file ledgergate ignores (config_ignored.py)


def normalise_database_url(url: str) -> str:
    """The async SQLAlchemy URL for a PostgreSQL or SQLite URL (drivers: asyncpg, aiosqlite)."""
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        return f"postgresql+asyncpg://{rest}"
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        if not is_sqlite_file(url):
            # The ledger's SQLite writer opens its own connections: in memory, each would be another empty database.
            raise ConfigError(
                f"database_url {url[:80]!r} names no SQLite file; the ledger needs one (sqlite:///path/ledger.db) "
                "or postgresql://..."
            )
        return f"sqlite+aiosqlite://{rest}"
    raise ConfigError(f"database_url scheme {scheme!r} is not supported; use postgresql://... or sqlite:///...")


DEFAULT_DATA_DIR = "ledgergate-data"


def ledger_spill_directory(settings: GatewaySettings) -> Path:
    """``ledger_spill_dir`` if set; else next to a SQLite file (``<db>.ledger-spill``), else (PostgreSQL, an
    in-memory SQLite) ``./ledgergate-data/ledger-spill-<hash of the database URL>``: one directory per database."""
    if settings.ledger_spill_dir:
        return Path(settings.ledger_spill_dir)
    url = settings.database_url
    if is_sqlite_file(url):
        database = url.partition(":///")[2].split("?", 1)[0]
        return Path(f"{database}.ledger-spill")
    without_password = re.sub(r"//([^:/@]*):[^@]*@", r"//\1@", url)
    digest = hashlib.sha256(without_password.encode()).hexdigest()[:12]
    return Path(DEFAULT_DATA_DIR) / f"ledger-spill-{digest}"


def is_sqlite_file(url: str) -> bool:
    return url.startswith("sqlite") and ":memory:" not in url and bool(url.partition(":///")[2].split("?", 1)[0])


def _check_counter_fallback(section: Section, fallback: str, redis_url: str | None, database_url: str) -> None:
    if fallback == "database" and (not redis_url or not database_url.startswith("postgresql")):
        raise section.fail(
            "counter_fallback",
            "'database' (admission through PostgreSQL row locks while Redis is unreachable) needs a redis_url "
            "(the counter store it falls back from) and a postgresql:// database_url (the one it falls back to)",
        )


def _check_global_budget(budget: Section, max_budget: float | None, budget_duration: str | None) -> None:
    """The global budget's window is parsed when the gateway starts; refuse a bad one here, before that."""
    if max_budget is None and budget_duration is None:
        return
    try:
        parse_windows(budget.values.get("max_budget"), budget.values.get("budget_duration"), prefix=f"{budget.where}.")
    except InvalidInput as exc:
        raise ConfigError(str(exc)) from exc


def _parse_settings(
    general: Mapping[str, Any],
    litellm_settings: Mapping[str, Any],
    environ: Mapping[str, str],
    problems: ConfigProblems,
) -> GatewaySettings:
    """The typed settings; each bad value is recorded in ``problems`` (and replaced by its default)."""
    section = Section(general, "general_settings")
    attempt = problems.attempt
    # LiteLLM puts the global proxy budget under litellm_settings; general_settings wins when both set it.
    budget_source = general if "max_budget" in general or "budget_duration" in general else litellm_settings
    budget = Section(budget_source, "general_settings" if budget_source is general else "litellm_settings")
    overrides = {key: environ.get(variable) or None for key, variable in ENV_OVERRIDES.items()}
    database_url = attempt(
        lambda: normalise_database_url(
            cast(str, overrides["database_url"] or section.text("database_url", DEFAULT_DATABASE_URL))
        ),
        DEFAULT_DATABASE_URL,
    )
    redis_url = attempt(lambda: read.redis_url(section, overrides["redis_url"]), None)
    counter_fallback = attempt(lambda: section.choice("counter_fallback", ("fail_closed", "database")), "fail_closed")
    attempt(lambda: _check_counter_fallback(section, counter_fallback, redis_url, database_url), None)
    extra = {key: value for key, value in general.items() if key not in _KNOWN_SETTINGS}
    alerting = general.get("alerting")
    alerting_fields: dict[str, Any] = {}
    if isinstance(alerting, Mapping):
        alerting_fields = attempt(lambda: read.alerting_settings(Section(alerting, "general_settings.alerting")), {})
    elif alerting is not None:
        extra["alerting"] = alerting  # LiteLLM's `alerting: ["slack"]` list: tolerated, not used
    found_before = len(problems.messages)
    max_budget = attempt(lambda: budget.number("max_budget", None, positive=False), None)
    budget_duration = attempt(lambda: budget.text("budget_duration"), None)
    if len(problems.messages) == found_before:  # a bad value is reported once, not again as a bad window
        attempt(lambda: _check_global_budget(budget, max_budget, budget_duration), None)
    return GatewaySettings(
        master_key=overrides["master_key"] or attempt(lambda: section.text("master_key"), None),
        database_url=database_url,
        redis_url=redis_url,
        redis_key_prefix=attempt(lambda: read.redis_key_prefix(section), DEFAULT_REDIS_KEY_PREFIX),
        budget_mode=cast(
            BudgetMode, attempt(lambda: section.choice("budget_mode", ("standard", "strict")), "standard")
        ),
        timezone=attempt(lambda: read.check_timezone(cast(str, section.text("timezone", "UTC"))), "UTC"),
        allow_client_tags=attempt(lambda: section.flag("allow_client_tags", False), False),
        hold_ttl_s=attempt(lambda: cast(float, section.number("hold_ttl_s", 900.0, positive=True)), 900.0),
        default_max_output_tokens=attempt(lambda: section.positive_int("default_max_output_tokens"), None) or 4096,
        max_n=attempt(lambda: section.positive_int("max_n"), None) or DEFAULT_MAX_N,
        counter_fallback=cast(CounterFallback, counter_fallback),
        max_budget=max_budget,
        budget_duration=budget_duration,
        **alerting_fields,
        upstream_timeout_s=attempt(
            lambda: cast(float, section.number("upstream_timeout_s", 600.0, positive=True)), 600.0
        ),
        metrics_labels=attempt(lambda: read.metrics_labels(section), DEFAULT_METRICS_LABELS),
        metrics_top_n=attempt(lambda: section.count("metrics_top_n", 20), 20),
        metrics_auth=attempt(lambda: read.metrics_auth(section), "admin"),
        max_request_body_bytes=attempt(lambda: section.positive_int("max_request_body_bytes"), None)
        or DEFAULT_MAX_REQUEST_BODY_BYTES,
        max_llm_request_body_bytes=attempt(lambda: section.positive_int("max_llm_request_body_bytes"), None)
        or DEFAULT_MAX_LLM_REQUEST_BODY_BYTES,
        dashboard_secure_cookies=attempt(
            lambda: cast(SecureCookieMode, section.choice("dashboard_secure_cookies", SECURE_COOKIE_MODES)), "auto"
        ),
        dashboard_session_idle_timeout_s=attempt(
            lambda: read.session_seconds(section, "dashboard_session_idle_timeout_s", DEFAULT_IDLE_S), DEFAULT_IDLE_S
        ),
        dashboard_session_max_age_s=attempt(
            lambda: read.session_seconds(section, "dashboard_session_max_age_s", DEFAULT_MAX_AGE_S), DEFAULT_MAX_AGE_S
        ),
        ledger_spill_dir=attempt(lambda: section.text("ledger_spill_dir"), None),
        extra=extra,
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


def _model_list(document: Mapping[str, Any], problems: ConfigProblems) -> list[Any]:
    model_list = document.get("model_list") or []
    if not isinstance(model_list, list):
        problems.add(f"model_list: must be a list of deployments, got {type(model_list).__name__}")
        return []
    return model_list


def _build(document: Mapping[str, Any], demo: bool, environ: Mapping[str, str]) -> GatewayConfig:
    """The config, or one ``ConfigError`` listing every problem of the document."""
    problems = ConfigProblems()
    top = Section(document, "config")
    general = expand_env(
        problems.attempt(lambda: top.mapping("general_settings"), EMPTY), "general_settings", environ, problems
    )
    litellm_settings = expand_env(
        problems.attempt(lambda: top.mapping("litellm_settings"), EMPTY), "litellm_settings", environ, problems
    )
    settings = _parse_settings(general, litellm_settings, environ, problems)
    parsed = [
        parse_deployment(
            entry,
            index,
            upstream_timeout_s=settings.upstream_timeout_s,
            default_max_output_tokens=settings.default_max_output_tokens,
            environ=environ,
            problems=problems,
        )
        for index, entry in enumerate(_model_list(document, problems))
    ]
    deployments = [deployment for deployment in parsed if deployment is not None]
    if demo:
        deployments += _demo_deployments({deployment.model_name for deployment in deployments})
    ids = [deployment.deployment_id for deployment in deployments]
    for duplicate_id in sorted({deployment_id for deployment_id in ids if ids.count(deployment_id) > 1}):
        problems.add(f"model_info.id {duplicate_id!r} is used by more than one deployment")
    problems.raise_if_any()
    warnings = ignored_keys(document, _KNOWN_SETTINGS)
    return GatewayConfig(settings=settings, deployments=tuple(deployments), warnings=tuple(warnings))


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
        raise ConfigError.of(exc.problems, source) from exc
