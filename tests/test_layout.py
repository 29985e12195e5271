"""The shape of the house: what each package may import, and no import cycles.

`model/` is what the workers run: no Kafka, faust, Prometheus or network client, and not the
offline evaluation. `eval/` measures `model/` and knows nothing of the wiring; `learn/` trains
what `model/` runs (the encoder) and judges it with `eval/`, knowing nothing of the wiring either.
`streams/` wires them. Checked on the real imports: a fresh interpreter's `sys.modules`, and every import
statement of the source (those inside functions included).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "streamrec"
IO_CLIENTS = ("faust", "mode", "confluent_kafka", "aiokafka", "prometheus_client", "qdrant_client")


def _modules(package: str) -> list[str]:
    root = PACKAGE / package
    names = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _imported_after(modules: list[str]) -> set[str]:
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print('\\n'.join(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("model", IO_CLIENTS + ("streamrec.eval", "streamrec.streams")),
        ("eval", IO_CLIENTS + ("streamrec.streams", "streamrec.learn")),
        ("learn", IO_CLIENTS + ("streamrec.streams",)),
    ],
)
def test_a_package_imports_nothing_it_must_not(package: str, forbidden: tuple[str, ...]) -> None:
    loaded = _imported_after(_modules(package))
    assert {f"streamrec.{package}"} <= loaded  # the probe did import the package
    bad = sorted(m for m in loaded if any(m == f or m.startswith(f + ".") for f in forbidden))
    assert bad == [], f"importing streamrec.{package} loads {bad[:10]}"


def _graph() -> dict[str, set[str]]:
    modules = set(_modules("model") + _modules("eval") + _modules("learn") + _modules("streams")) | {
        "streamrec"
    }
    graph: dict[str, set[str]] = {}
    for name in modules:
        path = PACKAGE.parent / (name.replace(".", "/") + ".py")
        if not path.exists():
            path = PACKAGE.parent / name.replace(".", "/") / "__init__.py"
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            deps |= {t for t in targets if t in modules and t != name}
        graph[name] = deps
    return graph


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = _graph()
    # Package __init__ files re-export their modules; a cycle through one is not a design cycle.
    inits = {name for name in graph if (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()}
    edges = {a: deps - inits for a, deps in graph.items() if a not in inits}
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert cycles == [], f"import cycles: {cycles[:5]}"


def test_model_and_eval_never_import_the_wiring() -> None:
    graph = _graph()
    for name, deps in graph.items():
        if name.startswith(("streamrec.model", "streamrec.eval", "streamrec.learn")):
            assert not any(d.startswith("streamrec.streams") for d in deps), (name, deps)
        if name.startswith(("streamrec.model", "streamrec.eval")):
            assert not any(d.startswith("streamrec.learn") for d in deps), (name, deps)
        if name.startswith("streamrec.model"):
            assert not any(d.startswith("streamrec.eval") for d in deps), (name, deps)
