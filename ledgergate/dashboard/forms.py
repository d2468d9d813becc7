"""Create/edit forms: their fields, the Budget Windows editor's rows, and the API body they become.

Window rows are identified by stable ids (``w_row`` fields, in order), never by their position, so removing
a row cannot shift an error or a value onto its neighbour. The browser checks the rows first (dashboard.js,
same grammar and duplicate rule as ``domain/durations.py``); the checks here only repeat what a browser without
JavaScript skipped. Everything else is left to the API's own validation, whose message the form then shows.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from ledgergate.dashboard.formatting import usd_exact
from ledgergate.dashboard.web import Form
from ledgergate.domain.durations import DurationError, parse_duration
from ledgergate.domain.entities import Entity
from ledgergate.domain.windows import LIFETIME, Window

PRESET_DURATIONS = {"hourly": "1h", "daily": "1d", "weekly": "1w", "monthly": "1mo"}
PRESET_CHOICES = (
    ("hourly", "Hourly"),
    ("daily", "Daily"),
    ("weekly", "Weekly"),
    ("monthly", "Monthly"),
    ("lifetime", "Lifetime (never resets)"),
    ("custom", "Custom…"),
)
_PRESET_BY_CANONICAL = {canonical: preset for preset, canonical in PRESET_DURATIONS.items()}
_ROW_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_AMOUNT = re.compile(r"^(\d{1,15}(\.\d{0,9})?|\.\d{1,9})$")
USER_ROLES = (
    ("internal_user", "internal user"),
    ("internal_user_viewer", "internal user (viewer)"),
    ("proxy_admin", "proxy admin"),
    ("proxy_admin_viewer", "proxy admin (viewer)"),
)


@dataclass(frozen=True, slots=True)
class WindowRow:
    row_id: str
    preset: str = "daily"
    custom: str = ""
    max_usd: str = ""
    error: str = ""

    @property
    def duration(self) -> str | None:
        """The ``budget_duration`` the row sends (``None``: a lifetime window)."""
        if self.preset == "lifetime":
            return None
        return self.custom.strip() if self.preset == "custom" else PRESET_DURATIONS.get(self.preset, self.preset)

    @property
    def period_key(self) -> str | None:
        """Canonical period (``24h`` and ``daily`` share one), or ``None`` when the duration does not parse."""
        if self.duration is None:
            return LIFETIME
        try:
            return parse_duration(self.duration).canonical
        except DurationError:
            return None


def new_row_id() -> str:
    return f"w{uuid.uuid4().hex[:10]}"


def row_of_window(window: Window) -> WindowRow:
    if window.duration is None:
        preset, custom = "lifetime", ""
    else:
        preset = _PRESET_BY_CANONICAL.get(window.duration.canonical, "custom")
        custom = "" if preset != "custom" else window.duration.text
    return WindowRow(new_row_id(), preset, custom, usd_exact(window.max_budget_nanos))


def rows_of_entity(entity: Entity) -> list[WindowRow]:
    # Model windows (model_max_budget) are not edited here: saving the rows must not turn them into
    # limits over every model.
    return [row_of_window(window) for window in entity.windows if window.model is None]


def rows_of_form(form: Form) -> list[WindowRow]:
    rows = []
    for row_id in dict.fromkeys(form.get_all("w_row")):
        if not _ROW_ID.match(row_id):
            continue
        preset = form.get(f"w_preset.{row_id}", "custom")
        rows.append(
            WindowRow(
                row_id,
                preset if preset in dict(PRESET_CHOICES) else "custom",
                form.get(f"w_custom.{row_id}").strip(),
                form.get(f"w_max.{row_id}").strip(),
            )
        )
    return rows


def _usd_number(text: str) -> int | float:
    """The JSON number the API expects (its schema refuses strings)."""
    return int(text) if "." not in text else float(text)


def check_rows(rows: list[WindowRow]) -> list[WindowRow]:
    """Rows with an ``error`` where the browser should have stopped the form already."""
    checked = []
    seen: dict[str, WindowRow] = {}
    for row in rows:
        error = ""
        if row.preset == "custom" and not row.custom:
            error = "enter a duration such as 15m, 2h, 3d, 2w or 3mo"
        elif not _AMOUNT.match(row.max_usd):
            error = "max $ must be an amount in USD such as 5 or 0.25"
        elif row.period_key is not None:
            first = seen.get(row.period_key)
            if first is not None:
                labels = f"{first.duration or LIFETIME!r} and {row.duration or LIFETIME!r}"
                error = f"duplicate window: {labels} cover the same periods"
            else:
                seen[row.period_key] = row
        checked.append(replace(row, error=error))
    return checked


@dataclass(frozen=True, slots=True)
class WindowFields:
    fields: dict[str, Any]
    row_for_field: dict[str, str]  # API field (as named in errors) -> row id


def window_fields(rows: list[WindowRow], *, replace_all: bool) -> WindowFields:
    """``max_budget`` + ``budget_duration`` (the primary window: the lifetime row if any, else the first) and
    ``budget_limits`` (the rest). ``replace_all`` (edits) sends them even when empty, which removes windows."""
    if not rows:
        empty: dict[str, Any] = {"max_budget": None, "budget_duration": None, "budget_limits": []}
        return WindowFields(empty if replace_all else {}, {})
    primary = next((row for row in rows if row.preset == "lifetime"), rows[0])
    others = [row for row in rows if row is not primary]
    fields: dict[str, Any] = {
        "max_budget": _usd_number(primary.max_usd),
        "budget_duration": primary.duration,
        "budget_limits": [{"budget_duration": r.duration, "max_budget": _usd_number(r.max_usd)} for r in others],
    }
    mapping = {"max_budget": primary.row_id, "budget_duration": primary.row_id}
    for index, row in enumerate(others):
        mapping[f"budget_limits[{index}]"] = row.row_id
    return WindowFields(fields, mapping)


def rows_with_server_error(
    rows: list[WindowRow], mapping: dict[str, str], param: str | None, message: str
) -> list[WindowRow]:
    """Point the API's refusal at the rows it is about: by field (``budget_limits[1].max_budget``), or for a
    duplicate (named without an index) at every row sharing a period."""
    if not param:
        return rows
    marked: set[str] = set()
    for field_name, row_id in mapping.items():
        if param == field_name or param.startswith(f"{field_name}."):
            marked.add(row_id)
    if not marked and "duplicate window" in message:
        keys = [row.period_key for row in rows]
        marked = {row.row_id for row, key in zip(rows, keys, strict=True) if key is not None and keys.count(key) > 1}
    return [replace(row, error=message) if row.row_id in marked else row for row in rows]


# ---- the other fields ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str  # the API field
    label: str
    control: str = "text"  # text | email | list (comma-separated) | select | checkbox
    help: str = ""
    new_only: bool = False
    required: bool = False
    options: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (value, label) for selects


FIELDS: dict[str, tuple[FieldSpec, ...]] = {
    "keys": (
        FieldSpec("key_alias", "Alias", help="a name to recognise the key by"),
        FieldSpec("team_id", "Team", "select"),
        FieldSpec("user_id", "User id", help="the user the key belongs to (optional)"),
        FieldSpec("models", "Models", "list", "comma-separated; empty allows every model"),
        FieldSpec("tags", "Tags", "list", "comma-separated; every request of the key carries them"),
        FieldSpec("duration", "Expires after", help="e.g. 30d or 12h; empty: never", new_only=True),
    ),
    "teams": (
        FieldSpec("team_id", "Team id", help="generated when empty", new_only=True),
        FieldSpec("team_alias", "Name"),
        FieldSpec("organization_id", "Organization", "select"),
        FieldSpec("models", "Models", "list", "comma-separated; empty allows every model"),
        FieldSpec("tags", "Tags", "list", "comma-separated; charged for every request of the team's keys"),
    ),
    "users": (
        FieldSpec("user_id", "User id", help="generated when empty", new_only=True),
        FieldSpec("user_alias", "Name"),
        FieldSpec("user_email", "Email", "email"),
        FieldSpec("user_role", "Role", "select", options=USER_ROLES),
        FieldSpec("auto_create_key", "Also issue a personal key", "checkbox", new_only=True),
    ),
    "tags": (
        FieldSpec("name", "Name", help="as keys, teams and requests spell it", new_only=True, required=True),
        FieldSpec("description", "Description"),
        FieldSpec("models", "Models", "list", "comma-separated"),
    ),
}


def values_of_entity(entity: Entity) -> dict[str, str]:
    extra = entity.extra
    return {
        "key_alias": entity.alias or "",
        "team_alias": entity.alias or "",
        "user_alias": entity.alias or "",
        "team_id": entity.team_id or "",
        "user_id": entity.user_id or "",
        "organization_id": entity.organization_id or "",
        "models": ", ".join(entity.models),
        "tags": ", ".join(entity.tags),
        "user_email": str(extra.get("user_email") or ""),
        "user_role": str(extra.get("user_role") or "internal_user"),
        "description": str(extra.get("description") or ""),
    }


def values_of_form(specs: tuple[FieldSpec, ...], form: Form) -> dict[str, str]:
    values = {spec.name: form.get(spec.name).strip() for spec in specs if spec.control != "checkbox"}
    values.update({spec.name: "on" if form.has(spec.name) else "" for spec in specs if spec.control == "checkbox"})
    return values


def body_of(specs: tuple[FieldSpec, ...], values: dict[str, str], *, is_new: bool) -> dict[str, Any]:
    """The API body: on create only what was filled in; on edit every shown field (empty clears it)."""
    body: dict[str, Any] = {}
    for spec in specs:
        if spec.new_only and not is_new:
            continue
        text = values.get(spec.name, "")
        if spec.control == "checkbox":
            body[spec.name] = text == "on"
        elif spec.control == "list":
            items = [part.strip() for part in text.split(",") if part.strip()]
            if items or not is_new:
                body[spec.name] = items
        elif text:
            body[spec.name] = text
        elif not is_new and spec.name != "user_role":
            body[spec.name] = None
    return body
