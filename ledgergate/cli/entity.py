"""The commands every administered kind of entity shares, built from one description of the kind.

Keys, teams, users, tags and shared budgets each have ``create``, ``list``, ``info``, ``update`` and ``delete``
commands that differ only in their options, API paths, columns and texts. Typer reads a command's options from its
callback's signature, so each command here is given a signature assembled from ``inspect.Parameter`` objects and
one callback that receives the parsed values by name: the logic is written once, each kind keeps its own options.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import typer

from ledgergate.cli.client import DEFAULT_URL, KeyOption, UrlOption, admin_client
from ledgergate.cli.options import (
    BUDGET_UNSETTABLE,
    BudgetDurationOption,
    BudgetIdOption,
    MaxBudgetOption,
    SoftBudgetOption,
    UnsetOption,
    WindowOption,
    YesOption,
    budget_fields,
    confirm,
    given,
    with_unset,
)
from ledgergate.cli.render import Column, JsonOption, detail, print_table, say, show

Values = dict[str, Any]  # a command's parameters by their Python names, as typer parsed them
Render = Callable[[Any], None]


def parameter(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    """One command parameter; ``annotation`` is ``Annotated[type, typer.Option(...) or typer.Argument(...)]``."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


CONNECTION = (
    parameter("url", UrlOption, DEFAULT_URL),
    parameter("admin_key", KeyOption, None),
    parameter("as_json", JsonOption, False),
)
BUDGET = (
    parameter("max_budget", MaxBudgetOption, None),
    parameter("budget_duration", BudgetDurationOption, None),
    parameter("window", WindowOption, None),
    parameter("soft_budget", SoftBudgetOption, None),
    parameter("budget_id", BudgetIdOption, None),
)


def command(
    app: typer.Typer, name: str, summary: str, parameters: Sequence[inspect.Parameter], run: Callable[[Values], None]
) -> None:
    """Register ``name``: ``parameters`` then the connection options, handled by ``run(values)``."""
    signature = [*parameters, *CONNECTION]

    def callback(**values: Any) -> None:
        run(values)

    callback.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
    callback.__annotations__ = {param.name: param.annotation for param in signature}
    app.command(name, help=summary)(callback)


def get(values: Values, path: str, params: Mapping[str, Any] | None = None) -> Any:
    with admin_client(values["url"], values["admin_key"]) as client:
        return client.get(path, params)


def post(values: Values, path: str, body: Mapping[str, Any]) -> Any:
    with admin_client(values["url"], values["admin_key"]) as client:
        return client.post(path, body)


@dataclass(frozen=True)
class Field:
    """An option filling one field of a request (body or query), e.g. ``--alias`` -> ``key_alias``."""

    name: str  # the Python parameter name
    annotation: Any
    api_name: str | None = None  # the request field, when not ``name``
    parse: Callable[[Any], Any] | None = None  # option value -> field value; a None result is not sent
    default: Any = None
    unsettable: bool = True  # ``--unset <field>`` may remove it

    @property
    def key(self) -> str:
        return self.api_name or self.name

    def parameter(self) -> inspect.Parameter:
        return parameter(self.name, self.annotation, self.default)

    def value(self, values: Values) -> Any:
        raw = values[self.name]
        return raw if self.parse is None else self.parse(raw)


def request_fields(fields: Sequence[Field], values: Values) -> dict[str, Any]:
    """The fields of the options given (not None), parsed in order, so the first bad option is the one reported."""
    return given({field.key: field.value(values) for field in fields})


@dataclass(frozen=True)
class EntityKind:
    """What the shared commands need to know of one kind of entity."""

    noun: str  # "key": the admin API paths are /key/new, /key/list, ...
    id_name: str  # the parameter and request field naming one entity ("key", "team_id", "name", ...)
    id_argument: Any  # its ``Annotated[str, typer.Argument(...)]``
    fields: Sequence[Field]  # the options of both create and update, shown before the budget options
    detail_fields: Sequence[Column]
    title: Callable[[Mapping[str, Any]], str]
    shares_budgets: bool = True  # has --budget-id: everything but a shared budget itself

    @property
    def id_field(self) -> Field:
        """The required argument naming one entity, as a request field."""
        return Field(self.id_name, self.id_argument, default=inspect.Parameter.empty)

    @property
    def id_parameter(self) -> inspect.Parameter:
        return self.id_field.parameter()

    @property
    def budget_parameters(self) -> tuple[inspect.Parameter, ...]:
        return BUDGET if self.shares_budgets else BUDGET[:-1]

    @property
    def unsettable(self) -> frozenset[str]:
        budget = BUDGET_UNSETTABLE if self.shares_budgets else BUDGET_UNSETTABLE - {"budget_id"}
        return budget | {field.key for field in self.fields if field.unsettable}

    def path(self, action: str) -> str:
        return f"/{self.noun}/{action}"

    def budget_body(self, values: Values) -> dict[str, Any]:
        budget_id = values["budget_id"] if self.shares_budgets else None
        return budget_fields(
            values["max_budget"], values["budget_duration"], values["window"], values["soft_budget"], budget_id
        )

    def show(self, entity: Mapping[str, Any]) -> None:
        detail(entity, self.detail_fields, title=self.title(entity))


def table_of(columns: Sequence[Column], empty: str, key: str | None = None) -> Render:
    """Render a list response (or its ``key`` member) as a table; ``empty`` is said when it has no rows."""
    return lambda data: print_table(data if key is None else data.get(key, []), columns, empty=empty)


def add_create(
    app: typer.Typer,
    kind: EntityKind,
    summary: str,
    *,
    leading_id: Field | None = None,
    extras: Sequence[Field] = (),
    render: Render | None = None,
    action: str = "new",
) -> None:
    """``create``: [leading_id], the kind's fields, ``extras``, the budget options -> POST /<noun>/<action>."""
    leading = (leading_id,) if leading_id else ()

    def run(values: Values) -> None:
        body = request_fields(kind.fields, values)
        body |= kind.budget_body(values)
        body |= request_fields(extras, values)
        result = post(values, kind.path(action), request_fields(leading, values) | body)
        show(result, values["as_json"], render or kind.show)

    options = [field.parameter() for field in (*leading, *kind.fields, *extras)]
    command(app, "create", summary, [*options, *kind.budget_parameters], run)


def add_list(
    app: typer.Typer,
    kind: EntityKind,
    summary: str,
    render: Render,
    *,
    filters: Sequence[Field] = (),
    query: Mapping[str, str] | None = None,
) -> None:
    """``list``: GET /<noun>/list with the ``filters`` given (and the fixed ``query``)."""

    def run(values: Values) -> None:
        result = get(values, kind.path("list"), request_fields(filters, values) | dict(query or {}))
        show(result, values["as_json"], render)

    command(app, "list", summary, [field.parameter() for field in filters], run)


def add_info(app: typer.Typer, kind: EntityKind, summary: str, render: Render | None = None) -> None:
    """``info ID``: GET /<noun>/info."""

    def run(values: Values) -> None:
        result = get(values, kind.path("info"), {kind.id_name: values[kind.id_name]})
        show(result, values["as_json"], render or kind.show)

    command(app, "info", summary, [kind.id_parameter], run)


def add_update(app: typer.Typer, kind: EntityKind, summary: str, *, extras: Sequence[Field] = ()) -> None:
    """``update ID``: the kind's fields, ``extras``, the budget options and ``--unset`` -> POST /<noun>/update."""

    def run(values: Values) -> None:
        body = request_fields(kind.fields, values) | request_fields(extras, values)
        body |= kind.budget_body(values)
        body = with_unset(body, values["unset"], kind.unsettable)
        result = post(values, kind.path("update"), {kind.id_name: values[kind.id_name], **body})
        show(result, values["as_json"], kind.show)

    options = [field.parameter() for field in (*kind.fields, *extras)]
    unset = parameter("unset", UnsetOption, None)
    command(app, "update", summary, [kind.id_parameter, *options, *kind.budget_parameters, unset], run)


def add_delete(
    app: typer.Typer,
    kind: EntityKind,
    summary: str,
    *,
    question: Callable[[Any], str],
    done: Callable[[Any, Any], str],
    many: inspect.Parameter | None = None,
) -> None:
    """``delete``: of the one entity named (or of the several of ``many``, sent as its name) -> POST /<noun>/delete.

    ``question(target)`` is asked unless ``--yes``; ``done(target, response)`` is said afterwards.
    """
    target = many or kind.id_parameter

    def run(values: Values) -> None:
        ids = values[target.name]
        confirm(question(ids), values["yes"])
        result = post(values, kind.path("delete"), {target.name: ids})
        show(result, values["as_json"], lambda data: say(done(ids, data)))

    command(app, "delete", summary, [target, parameter("yes", YesOption, False)], run)
