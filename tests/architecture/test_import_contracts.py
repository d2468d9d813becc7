"""Layering rules of docs/architecture.md, checked on the import statements of every module."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ledgergate"

# layer -> layers of ours it must never import
FORBIDDEN = {
    "domain": {"services", "storage", "upstream", "api", "dashboard", "cli", "container", "config"},
    "services": {"storage", "upstream", "api", "dashboard", "cli", "container"},
    "storage": {"services", "upstream", "api", "dashboard", "cli", "container"},
    "upstream": {"services", "storage", "api", "dashboard", "cli", "container"},
    "api": {"storage", "dashboard", "cli"},
}


# The HTTP composition root assembles api and dashboard, as container.py assembles the adapters.
EXEMPT = {"api/app.py"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "ledgergate" else None


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_what_the_architecture_allows(layer: str) -> None:
    """Adapters never import each other and the domain imports nothing of ours: the charge path stays findable."""
    violations = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        if str(path.relative_to(PACKAGE)) in EXEMPT:
            continue
        for module in _imports(path):
            if _layer_of(module) in FORBIDDEN[layer]:
                violations.append(f"{path.relative_to(PACKAGE.parent)} imports {module}")
    assert violations == []


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
