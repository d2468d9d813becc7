"""Writes: create/edit forms, spend resets and key blocking. Each goes through ``submit`` (the API's routes)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ledgergate.container import Container
from ledgergate.dashboard import submit
from ledgergate.dashboard.formatting import usd_text
from ledgergate.dashboard.forms import (
    FIELDS,
    PRESET_CHOICES,
    FieldSpec,
    WindowRow,
    body_of,
    check_rows,
    rows_of_entity,
    rows_of_form,
    rows_with_server_error,
    values_of_entity,
    values_of_form,
    window_fields,
)
from ledgergate.dashboard.kinds import KindInfo
from ledgergate.dashboard.page_routes import entity_for, kind_for
from ledgergate.dashboard.viewer import Viewer
from ledgergate.dashboard.web import CurrentViewer, PageError, container_of, read_form, redirect, render
from ledgergate.domain.charging import EntityType
from ledgergate.domain.entities import Entity

router = APIRouter(include_in_schema=False)
_AMOUNT_CHARS = set("0123456789.")


async def _options(container: Container, viewer: Viewer, spec: FieldSpec) -> tuple[tuple[str, str], ...]:
    """Choices of the select fields: a team admin may only pick one of their teams."""
    entities = container.entity_admin.entities
    if spec.name == "team_id":
        teams = viewer.visible(await entities.list_all(EntityType.TEAM))
        choices = tuple((t.id, t.display_name()) for t in sorted(teams, key=lambda t: t.display_name().lower()))
        return ((("", "— no team —"),) if viewer.is_admin else ()) + choices
    if spec.name == "organization_id":
        organizations = await entities.list_all(EntityType.ORGANIZATION)
        return (("", "— none —"), *((o.id, o.display_name()) for o in organizations))
    return spec.options


def _editable_kind(viewer: Viewer, slug: str) -> KindInfo:
    kind = kind_for(viewer, slug)
    if not kind.editable:
        raise PageError(404, f"{kind.title.lower()} are not edited here")
    return kind


async def _form_page(
    request: Request,
    viewer: Viewer,
    kind: KindInfo,
    entity: Entity | None,
    values: dict[str, str],
    rows: list[WindowRow],
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    container = container_of(request)
    specs = [
        replace(spec, options=await _options(container, viewer, spec))
        for spec in FIELDS[kind.slug]
        if entity is None or not spec.new_only
    ]
    context: dict[str, Any] = {
        "kind": kind,
        "entity": entity,
        "specs": specs,
        "values": values,
        "rows": rows,
        "presets": PRESET_CHOICES,
        "error": error,
        "active": kind.slug,
    }
    return render(request, viewer, "form.html", context, status=status)


async def _submit_form(request: Request, viewer: Viewer, kind: KindInfo, entity: Entity | None) -> Response:
    form = await read_form(request, viewer)
    specs = FIELDS[kind.slug]
    values = values_of_form(specs, form)
    rows = check_rows(rows_of_form(form))
    if any(row.error for row in rows):
        error = "fix the budget windows marked below"
        return await _form_page(request, viewer, kind, entity, values, rows, error=error, status=400)
    windows = window_fields(rows, replace_all=entity is not None)
    body = {**body_of(specs, values, is_new=entity is None), **windows.fields}
    try:
        if entity is None:
            result = await submit.create(kind.slug, request, viewer, body)
        else:
            result = await submit.update(kind.slug, entity.id, request, viewer, body)
    except submit.Refused as exc:
        rows = rows_with_server_error(rows, windows.row_for_field, exc.param, exc.message)
        return await _form_page(request, viewer, kind, entity, values, rows, error=exc.message, status=exc.status)
    entity_id = str(result.get({"keys": "token", "teams": "team_id", "users": "user_id", "tags": "name"}[kind.slug]))
    name = result.get("key_alias") or result.get("team_alias") or result.get("user_alias") or entity_id
    if entity is None and result.get("key"):
        # The secret exists only in this response: show it once, never cache the page.
        context = {"kind": kind, "secret": result["key"], "entity_id": entity_id, "name": name, "active": kind.slug}
        return render(request, viewer, "secret.html", context)
    verb = "Created" if entity is None else "Saved"
    detail = f"/{kind.slug}/view/{quote(entity_id, safe='')}"
    return redirect(request, detail, level="success", message=f"{verb} {kind.singular} {name!r}.")


@router.get("/ui/{slug}/new")
async def new_form(request: Request, viewer: CurrentViewer, slug: str) -> Response:
    kind = _editable_kind(viewer, slug)
    if not viewer.may_create(kind):
        raise PageError(403, f"you may not create {kind.title.lower()}")
    values = {"user_role": "internal_user", "auto_create_key": "on"}
    if not viewer.is_admin and viewer.admin_team_ids:
        values["team_id"] = sorted(viewer.admin_team_ids)[0]
    return await _form_page(request, viewer, kind, None, values, [])


@router.post("/ui/{slug}/new")
async def create(request: Request, viewer: CurrentViewer, slug: str) -> Response:
    kind = _editable_kind(viewer, slug)
    if not viewer.may_create(kind):
        raise PageError(403, f"you may not create {kind.title.lower()}")
    return await _submit_form(request, viewer, kind, None)


async def _editable(request: Request, viewer: Viewer, slug: str, entity_id: str) -> tuple[KindInfo, Entity]:
    kind = _editable_kind(viewer, slug)
    entity = await entity_for(container_of(request), viewer, kind, entity_id)
    if not viewer.may_edit(entity):
        raise PageError(403, f"you may not edit this {kind.singular}")
    return kind, entity


@router.get("/ui/{slug}/edit/{entity_id:path}")
async def edit_form(request: Request, viewer: CurrentViewer, slug: str, entity_id: str) -> Response:
    kind, entity = await _editable(request, viewer, slug, entity_id)
    return await _form_page(request, viewer, kind, entity, values_of_entity(entity), rows_of_entity(entity))


@router.post("/ui/{slug}/edit/{entity_id:path}")
async def edit(request: Request, viewer: CurrentViewer, slug: str, entity_id: str) -> Response:
    kind, entity = await _editable(request, viewer, slug, entity_id)
    return await _submit_form(request, viewer, kind, entity)


def _amount(text: str) -> int | float | str:
    text = text.strip()
    if text and set(text) <= _AMOUNT_CHARS and text.count(".") <= 1 and text != ".":
        return int(text) if "." not in text else float(text)
    return text  # the API refuses it with its own message


@router.post("/ui/{slug}/reset/{entity_id:path}")
async def reset(request: Request, viewer: CurrentViewer, slug: str, entity_id: str) -> Response:
    container = container_of(request)
    kind = kind_for(viewer, slug)
    entity = await entity_for(container, viewer, kind, entity_id)
    form = await read_form(request, viewer)
    window = form.get("budget_duration").strip() or None
    reason = form.get("reason").strip()
    back = f"/{kind.slug}/view/{quote(entity.id, safe='')}"
    if not reason:
        return redirect(
            request, back, level="error", message="Reset not done: give a reason (it is kept in the history)."
        )
    fields = {
        "reset_to": _amount(form.get("reset_to")),
        "budget_duration": window,
        "model": form.get("model").strip() or None,
        "reason": reason,
    }
    try:
        result = await submit.reset(kind.type, entity.id, request, viewer, fields)
    except submit.Refused as exc:
        return redirect(request, back, level="error", message=f"Reset refused ({exc.status}): {exc.message}")
    label = result.get("budget_duration") or "lifetime"
    previous, new = _nanos(result["previous_spend"]), _nanos(result["spend"])
    message = (
        f"Reset the {label} window of {kind.singular} {entity.display_name()!r}: "
        f"{usd_text(previous)} → {usd_text(new)} (adjustment {result['adjustment_id'][:8]}, reason kept)."
    )
    return redirect(request, back, level="success", message=message)


def _nanos(usd: object) -> int:
    # The API's response shows USD floats; they came from integer nanos, so rounding recovers them exactly.
    return round(float(usd) * 1_000_000_000) if isinstance(usd, int | float) else 0


@router.post("/ui/keys/block/{key_id}")
async def block(request: Request, viewer: CurrentViewer, key_id: str) -> Response:
    return await _set_blocked(request, viewer, key_id, True)


@router.post("/ui/keys/unblock/{key_id}")
async def unblock(request: Request, viewer: CurrentViewer, key_id: str) -> Response:
    return await _set_blocked(request, viewer, key_id, False)


async def _set_blocked(request: Request, viewer: Viewer, key_id: str, blocked: bool) -> Response:
    kind = kind_for(viewer, "keys")
    entity = await entity_for(container_of(request), viewer, kind, key_id)
    await read_form(request, viewer)
    back = f"/keys/view/{quote(entity.id, safe='')}"
    try:
        await submit.set_key_blocked(entity.id, request, viewer, blocked)
    except submit.Refused as exc:
        return redirect(request, back, level="error", message=f"Refused ({exc.status}): {exc.message}")
    state = "blocked: its requests are refused (401)" if blocked else "unblocked"
    return redirect(request, back, level="success", message=f"Key {entity.display_name()!r} is {state}.")
