"""Layering rules of docs/architecture.md, checked on the import statements of every module. No exemptions."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ledgergate"
MAX_FILE_LINES = 400

# layer -> layers of ours it must never import. ``app`` is the HTTP root (ledgergate/app.py) that mounts the api and
# the dashboard: nothing below it imports it. The services may use leaf value modules (deployments) besides domain.
FORBIDDEN = {
    "domain": {"services", "storage", "upstream", "api", "dashboard", "cli", "container", "config", "app"},
    "services": {"storage", "upstream", "api", "dashboard", "cli", "container", "config", "app"},
    "storage": {"services", "upstream", "api", "dashboard", "cli", "container", "app"},
    "upstream": {"services", "storage", "api", "dashboard", "cli", "container", "app"},
    "api": {"storage", "upstream", "dashboard", "cli", "app"},
    "dashboard": {"storage", "upstream", "api", "cli", "app"},
    "container": {"api", "dashboard", "cli", "app"},
}


def _imports(path: Path) -> set[str]:
    """Every ``ledgergate...`` module a file imports, including imports inside functions and ``if`` blocks."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names if node.module == "ledgergate")
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            names.add(f"<relative import {'.' * node.level}{node.module or ''}>")
    return names


def _layer_of(module: str) -> str | None:
    """``ledgergate.api.admin.keys`` -> ``api``; ``ledgergate.container`` -> ``container``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "ledgergate" else None


def _layer_of_file(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _modules() -> Iterator[Path]:
    yield from sorted(PACKAGE.rglob("*.py"))


def _package_arrows() -> dict[str, set[str]]:
    arrows: dict[str, set[str]] = {}
    for path in _modules():
        source = _layer_of_file(path)
        for module in _imports(path):
            target = _layer_of(module)
            if target is not None and target != source:
                arrows.setdefault(source, set()).add(target)
    return arrows


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_what_the_architecture_allows(layer: str) -> None:
    """Adapters never import each other, the domain imports nothing of ours, the composition root no HTTP layer,
    and the api and the dashboard not each other: the charge path stays findable."""
    violations = [
        f"{path.relative_to(PACKAGE.parent)} imports {module}"
        for path in _modules()
        if _layer_of_file(path) == layer
        for module in sorted(_imports(path))
        if _layer_of(module) in FORBIDDEN[layer]
    ]
    assert violations == []


def test_no_relative_imports_hide_an_arrow() -> None:
    """The rules read absolute imports only, so a relative one could smuggle an arrow past them."""
    relative = [
        f"{path.relative_to(PACKAGE.parent)}: {module}"
        for path in _modules()
        for module in _imports(path)
        if module.startswith("<relative")
    ]
    assert relative == []


def _cycles(arrows: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle reachable in ``arrows``, each as the packages walked, first one repeated at the end."""
    cycles: list[list[str]] = []

    def walk(trail: list[str]) -> None:
        for target in sorted(arrows.get(trail[-1], ())):
            if target in trail:
                cycles.append([*trail[trail.index(target) :], target])
            else:
                walk([*trail, target])

    for start in sorted(arrows):
        walk([start])
    return cycles


def test_packages_import_each_other_without_cycles() -> None:
    """Issue 13: container -> api -> container and api -> dashboard -> api were cycles. Package arrows now form a
    graph without cycles, so every package can be understood (and tested) from what it imports alone."""
    arrows = _package_arrows()
    assert {"api", "dashboard", "container", "services"} <= set(arrows)  # the arrows were read at all
    assert _cycles(arrows) == []


def test_the_cycle_check_reports_the_cycles_issue_13_removed() -> None:
    """The check itself finds the cycles issue 13 removed when they are planted back."""
    planted = {"api": {"container", "dashboard"}, "container": {"api"}, "dashboard": {"api"}}
    assert {frozenset(cycle) for cycle in _cycles(planted)} == {
        frozenset({"api", "container"}),
        frozenset({"api", "dashboard"}),
    }


def test_no_module_is_longer_than_the_limit() -> None:
    """One concept per file: none over ~400 lines (docs/architecture.md)."""
    too_long = {
        str(path.relative_to(PACKAGE)): lines
        for path in _modules()
        if (lines := len(path.read_text().splitlines())) > MAX_FILE_LINES
    }
    assert too_long == {}


def test_domain_uses_only_the_standard_library() -> None:
    """The pure core runs anywhere: no third-party import in ledgergate/domain."""
    allowed = set(sys.stdlib_module_names) | {"ledgergate"}
    offenders = [
        f"{path.name}: {module}"
        for path in sorted((PACKAGE / "domain").rglob("*.py"))
        for module in _imports(path)
        if module.split(".")[0] not in allowed
    ]
    assert offenders == []
