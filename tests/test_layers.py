"""The package's layers import only downward, and no modules import each other in a circle.

    data → models → scoring → objectives / judges / generation → train → config → eval / sim
         → recipes / app → cli

(docs/architecture.md explains the map.) The walk reads every module's source with ``ast`` — imports
inside functions count as much as those at the top — so it sees edges that a lazy import hides from
``sys.modules``. A package may import its own modules and any package in a lower layer; packages that
share a layer (objectives, judges and generation; eval and sim; recipes and app) do not import each
other, so each can be read, tested and replaced alone.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "alignlab"

# Lowest first. The root module ``alignlab`` (only its version string) sits under everything.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("alignlab", "validation"),  # validation: pydantic error messages, imports nothing of alignlab
    ("durable",),  # durable job state (snapshots, stop signals): stdlib only, for every long command
    ("data",),
    ("models",),
    ("scoring",),
    ("objectives", "judges", "generation"),
    ("train",),  # the loop, its settings and the run config that composes every layer's settings
    ("config",),  # alignlab.config: the run config's public names gathered for users (train/config.py)
    ("eval", "sim"),
    ("recipes", "app"),
    ("cli",),
    ("__main__",),  # `python -m alignlab` runs the command line
)

# Edges the map allows but the design does not, with the reason.
FORBIDDEN: dict[tuple[str, str], str] = {
    ("objectives", "models"): "objectives know nothing of models: they receive tensors (Scores)",
}

# Edges allowed against the rules above, each with its reason. (package, package) or (module, module).
ALLOWED: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    importer: str  # module that imports, e.g. "alignlab.models.reward"
    imported: str  # module it imports
    line: int


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def walk_imports(root: Path = SOURCE) -> tuple[set[str], list[Import]]:
    """Every module under ``root`` (a package folder) and every import of a module of that package.

    ``from pkg import name`` counts as an import of ``pkg.name`` when that is a module, else of ``pkg``.
    Relative imports are resolved against the importing module's package.
    """
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    top = root.name
    found: list[Import] = []
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                targets = [
                    f"{source}.{alias.name}" if f"{source}.{alias.name}" in files else source
                    for alias in node.names
                ]
            else:
                continue
            for target in targets:
                if target == top or target.startswith(top + "."):
                    # `import a.b.c` names a module; keep the longest prefix that is one.
                    while target not in files and "." in target:
                        target = target.rpartition(".")[0]
                    found.append(Import(module, target, node.lineno))
    return set(files), found


def package_of(module: str) -> str:
    """The layer unit of a module: its first-level package (or module) under the root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def rank_table(layers: Iterable[Iterable[str]]) -> dict[str, int]:
    return {name: rank for rank, names in enumerate(layers) for name in names}


def layer_violations(
    imports: Iterable[Import],
    layers: Iterable[Iterable[str]],
    allowed: Mapping[tuple[str, str], str],
    forbidden: Mapping[tuple[str, str], str] | None = None,
) -> list[str]:
    """One line per import that does not point to a strictly lower layer (or inside its own package), that
    the design forbids, or that reaches into another package's private (``_name``) module."""
    rank = rank_table(layers)
    problems = []
    for edge in imports:
        src, dst = package_of(edge.importer), package_of(edge.imported)
        where = f"{edge.importer} line {edge.line} imports {edge.imported}"
        if src == dst or (src, dst) in allowed or (edge.importer, edge.imported) in allowed:
            continue
        if (src, dst) in (forbidden or {}):
            problems.append(f"forbidden import {src} → {dst} ({forbidden[src, dst]}): {where}")
        if any(part.startswith("_") and not part.startswith("__") for part in edge.imported.split(".")):
            problems.append(f"private module of {dst} imported from {src}: {where}")
        for name in (src, dst):
            if name not in rank:
                problems.append(f"{name} is in no layer: add it to LAYERS in tests/test_layers.py")
        if src in rank and dst in rank and rank[dst] >= rank[src]:
            kind = "upward" if rank[dst] > rank[src] else "sideways (same layer)"
            problems.append(f"{kind} import {src} → {dst}: {where}")
    return sorted(set(problems))


def import_cycles(modules: Iterable[str], imports: Iterable[Import]) -> list[list[str]]:
    """Every set of modules that import each other in a circle (Tarjan's strongly connected components)."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for edge in imports:
        if edge.importer != edge.imported:
            graph.setdefault(edge.importer, set()).add(edge.imported)
            graph.setdefault(edge.imported, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


def cycle_report(cycles: list[list[str]], imports: Iterable[Import]) -> list[str]:
    """Each cycle with the import lines that close it."""
    lines = []
    for members in cycles:
        inside = set(members)
        edges = [
            f"{e.importer}:{e.line} → {e.imported}"
            for e in imports
            if e.importer in inside and e.imported in inside and e.importer != e.imported
        ]
        lines.append(f"cycle {' ↔ '.join(members)} via " + "; ".join(sorted(set(edges))))
    return lines


# ------------------------------------------------------------------ the real package


@pytest.fixture(scope="module")
def package_graph() -> tuple[set[str], list[Import]]:
    return walk_imports(SOURCE)


def test_every_package_is_in_a_layer(package_graph):
    modules, _ = package_graph
    rank = rank_table(LAYERS)
    assert sorted({package_of(m) for m in modules} - set(rank)) == []


def test_imports_point_down(package_graph):
    _, imports = package_graph
    problems = layer_violations(imports, LAYERS, ALLOWED, FORBIDDEN)
    assert not problems, "\n".join(problems)


def test_no_import_cycles(package_graph):
    modules, imports = package_graph
    problems = cycle_report(import_cycles(modules, imports), imports)
    assert not problems, "\n".join(problems)


def test_every_allowed_edge_still_exists(package_graph):
    """An exception outlives its reason otherwise: drop it from ALLOWED once the edge is gone."""
    _, imports = package_graph
    present = {(package_of(e.importer), package_of(e.imported)) for e in imports}
    present |= {(e.importer, e.imported) for e in imports}
    assert sorted(set(ALLOWED) - present) == []


# ------------------------------------------------------------------ the check itself, on made-up packages


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "alignlab" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "alignlab"


SYNTHETIC = {
    "__init__.py": "",
    "data/__init__.py": "",
    "data/records.py": "import json\n",
    "models/__init__.py": "",
    "models/load.py": "from alignlab.data.records import x\n",
    "scoring/__init__.py": "",
    "scoring/engine.py": "from alignlab.models import load\nfrom . import scores\n",
    "scoring/scores.py": "",
}


def test_a_clean_graph_passes(tmp_path):
    modules, imports = walk_imports(_write(tmp_path, SYNTHETIC))
    assert {(e.importer, e.imported) for e in imports} == {
        ("alignlab.models.load", "alignlab.data.records"),
        ("alignlab.scoring.engine", "alignlab.models.load"),
        ("alignlab.scoring.engine", "alignlab.scoring.scores"),
    }
    assert layer_violations(imports, LAYERS, {}) == []
    assert import_cycles(modules, imports) == []


def test_an_upward_import_inside_a_function_fails_and_names_the_edge(tmp_path):
    files = dict(SYNTHETIC)
    files["models/load.py"] += "\n\ndef pooled():\n    from alignlab.scoring.engine import pack\n"
    _, imports = walk_imports(_write(tmp_path, files))
    assert layer_violations(imports, LAYERS, {}) == [
        "upward import models → scoring: alignlab.models.load line 5 imports alignlab.scoring.engine"
    ]
    # Allowing exactly that edge silences exactly it.
    assert layer_violations(imports, LAYERS, {("models", "scoring"): "reason"}) == []


def test_sideways_forbidden_and_private_imports_and_an_unknown_package_fail(tmp_path):
    files = dict(SYNTHETIC)
    files["objectives/__init__.py"] = ""
    files["judges/__init__.py"] = ""
    files["judges/_helpers.py"] = ""
    files["objectives/loss.py"] = "import alignlab.judges\nfrom alignlab.models import load\n"
    files["extras/__init__.py"] = "from ..data import records\nfrom alignlab.judges._helpers import f\n"
    _, imports = walk_imports(_write(tmp_path, files))
    assert layer_violations(imports, LAYERS, {}, FORBIDDEN) == [
        "extras is in no layer: add it to LAYERS in tests/test_layers.py",
        "forbidden import objectives → models (objectives know nothing of models: they receive tensors "
        "(Scores)): alignlab.objectives.loss line 2 imports alignlab.models.load",
        "private module of judges imported from extras: alignlab.extras line 2 imports alignlab.judges._helpers",
        "sideways (same layer) import objectives → judges: alignlab.objectives.loss line 1 imports alignlab.judges",
    ]


def test_a_cycle_inside_a_package_fails_and_names_its_edges(tmp_path):
    files = dict(SYNTHETIC)
    files["scoring/scores.py"] = "def f():\n    from alignlab.scoring import engine\n"
    modules, imports = walk_imports(_write(tmp_path, files))
    cycles = import_cycles(modules, imports)
    assert cycles == [["alignlab.scoring.engine", "alignlab.scoring.scores"]]
    assert cycle_report(cycles, imports) == [
        "cycle alignlab.scoring.engine ↔ alignlab.scoring.scores via "
        "alignlab.scoring.engine:2 → alignlab.scoring.scores; alignlab.scoring.scores:2 → alignlab.scoring.engine"
    ]
