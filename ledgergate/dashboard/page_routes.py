"""Read-only pages: the overview, the entity lists and each entity's detail page."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ledgergate.container import Container
from ledgergate.dashboard.detail import build_detail
from ledgergate.dashboard.kinds import KINDS, KindInfo
from ledgergate.dashboard.listing import LEVELS, SORTS, ListQuery, list_page
from ledgergate.dashboard.overview import build_overview
from ledgergate.dashboard.viewer import Viewer
from ledgergate.dashboard.web import CurrentViewer, PageError, base_path, container_of, render
from ledgergate.domain.entities import Entity

router = APIRouter(include_in_schema=False)


def kind_for(viewer: Viewer, slug: str) -> KindInfo:
    kind = KINDS.get(slug)
    if kind is None or kind not in viewer.kinds():
        raise PageError(404, f"no page {slug!r}")
    return kind


async def entity_for(container: Container, viewer: Viewer, kind: KindInfo, entity_id: str) -> Entity:
    """The entity, if the viewer may see it (a team admin gets 404 for other teams, as if it did not exist)."""
    entity = await container.directory.get(kind.type, entity_id) if 0 < len(entity_id) <= 255 else None
    if entity is None or not viewer.sees(entity):
        raise PageError(404, f"{kind.singular} {entity_id!r} not found")
    return entity


@router.get("/ui")
async def dashboard_root(request: Request) -> Response:
    return RedirectResponse(f"{base_path(request)}/", status_code=307)


@router.get("/ui/")
async def overview(request: Request, viewer: CurrentViewer) -> Response:
    data = await build_overview(container_of(request), viewer)
    return render(request, viewer, "overview.html", {"data": data, "active": "overview"})


@router.get("/ui/{slug}")
async def entity_list(request: Request, viewer: CurrentViewer, slug: str) -> Response:
    kind = kind_for(viewer, slug)
    query = ListQuery.parse(dict(request.query_params))
    page = await list_page(container_of(request), viewer, kind, query)
    context = {"page": page, "kind": kind, "sorts": SORTS, "levels": LEVELS, "active": slug}
    return render(request, viewer, "list.html", context)


@router.get("/ui/{slug}/view/{entity_id:path}")
async def entity_detail(request: Request, viewer: CurrentViewer, slug: str, entity_id: str) -> Response:
    container = container_of(request)
    kind = kind_for(viewer, slug)
    entity = await entity_for(container, viewer, kind, entity_id)
    detail = await build_detail(container, viewer, kind, entity)
    return render(request, viewer, "detail.html", {"d": detail, "kind": kind, "entity": entity, "active": slug})
