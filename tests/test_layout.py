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


# --- rooms: each package's docstring says what it may import, and its modules keep to it ------------

MAX_LINES = 400


def _packages() -> dict[str, Path]:
    return {
        ".".join(init.parent.relative_to(PACKAGE.parent).parts): init
        for init in sorted(PACKAGE.rglob("__init__.py"))
    }


def _may_import(package: str, inits: dict[str, Path]) -> set[str]:
    """The packages and modules `package`'s docstring lets it import (itself always)."""
    doc = ast.get_docstring(ast.parse(inits[package].read_text())) or ""
    lines = [line for line in doc.splitlines() if line.startswith("May import:")]
    assert len(lines) == 1, f"{package}'s docstring must end with one 'May import:' line"
    allowed = {package}
    text = doc[doc.index("May import:") + len("May import:") :].strip().rstrip(".")
    for entry in (e.strip() for e in text.replace("\n", " ").split(",")):
        if entry == "nothing":
            continue
        if entry.startswith("what ") and entry.endswith(" may import"):
            allowed |= _may_import("streamrec." + entry[len("what ") : -len(" may import")], inits)
        else:
            assert "streamrec." + entry in _modules_and_packages(), f"{package}: unknown {entry!r}"
            allowed.add("streamrec." + entry)
    return allowed


def _modules_and_packages() -> set[str]:
    return set(_modules("model") + _modules("eval") + _modules("learn") + _modules("streams")) | {"streamrec"}


def _owner(module: str, inits: dict[str, Path]) -> str:
    if module in inits:
        return module
    return max((p for p in inits if module.startswith(p + ".")), key=len)


def test_every_package_says_what_it_holds_and_what_it_may_import() -> None:
    inits = _packages()
    for package in inits:
        doc = ast.get_docstring(ast.parse(inits[package].read_text())) or ""
        holds = doc.split("\n\n")[0].strip()
        assert len(holds) > 20, f"{package}'s docstring must say what it holds"
        _may_import(package, inits)


def test_each_module_imports_only_what_its_package_may() -> None:
    inits = _packages()
    allowed = {package: _may_import(package, inits) for package in inits}
    wrong = []
    for name, deps in _graph().items():
        rule = allowed[_owner(name, inits)]
        for dep in deps:
            if not any(dep == a or dep.startswith(a + ".") for a in rule):
                wrong.append(f"{name} imports {dep}")
    assert wrong == [], "\n".join(sorted(wrong))


def test_no_module_is_longer_than_a_newcomer_reads_at_once() -> None:
    long = {
        str(path.relative_to(PACKAGE.parent)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"
