"""The layout ARCHITECTURE.md describes, checked from the source (AST), not by eye: no import cycle, no import
from a lower stage into a higher one, Ray only in the modules ARCHITECTURE.md names, a small top level."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "genart"

# stages from the ground floor up: a module may import its own stage and the stages below it, never above
LAYERS = [
    [
        "genart.cpu_path",
        "genart.errors",
        "genart.ids",
        "genart.images",
        "genart.ray_session",
        "genart.warm_state",
    ],
    ["genart.config"],
    ["genart.storage"],
    ["genart.data", "genart.models"],
    ["genart.bundle"],
    ["genart.training"],
    ["genart.filters", "genart.market"],
    ["genart.generation"],
    ["genart.synthesis"],
    ["genart.views"],
    ["genart.cluster", "genart.bench"],
    ["genart.cli"],
]
RANK = {prefix: i for i, layer in enumerate(LAYERS) for prefix in layer}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str) -> tuple[set[str], bool]:
    """(genart modules `name` imports anywhere in its body, whether it imports ray).

    The package face (`genart/__init__.py`, module "genart") sits above every stage: it imports the bundle
    and the generation engine for `genart.load_bundle`. A submodule that uses it (a plain `import genart`,
    `from genart import load_bundle`, or any `genart.X` attribute, `genart.__version__` included) has an
    edge to "genart", which belongs to no stage and so always runs up. The one exemption: `from genart
    import __version__` is no edge, since the face sets `__version__` before any submodule runs."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    deps: set[str] = set()
    ray = False
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "genart":
            deps.add("genart")  # genart.X: the face's attribute
        elif isinstance(node, ast.Import):
            for alias in node.names:
                ray |= alias.name.split(".")[0] == "ray"
                if alias.name == "genart":
                    deps.add("genart")
                elif alias.name.startswith("genart."):
                    deps.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            ray |= source.split(".")[0] == "ray"
            if source == "genart" and all(a.name == "__version__" for a in node.names):
                continue
            if source.split(".")[0] == "genart":
                for alias in node.names:
                    full = f"{source}.{alias.name}"
                    deps.add(full if full in MODULES else source)
    return {d for d in deps if d != name}, ray


GRAPH = {name: imports(name) for name in MODULES}


def rank(name: str) -> int | None:
    best = None
    for prefix, r in RANK.items():
        if name == prefix or name.startswith(prefix + "."):
            best = r
    return best


def test_every_module_belongs_to_a_stage():
    assert [m for m in MODULES if m != "genart" and rank(m) is None] == []


def test_no_import_runs_up_the_stages():
    upward = [
        f"{m} (stage {rank(m)}) imports {d} (stage {rank(d)})"
        for m, (deps, _) in GRAPH.items()
        if m != "genart"
        for d in sorted(deps)
        if rank(d) is None or rank(d) > rank(m)
    ]
    assert upward == []


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v][0]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in GRAPH[v][0]:
                found.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_cycle():
    assert _cycles() == []


def test_the_cycle_check_finds_a_cycle():
    GRAPH["genart.errors"][0].add("genart.ids")
    GRAPH["genart.ids"][0].add("genart.errors")
    try:
        assert _cycles() == [["genart.errors", "genart.ids"]]
    finally:
        GRAPH["genart.errors"][0].discard("genart.ids")
        GRAPH["genart.ids"][0].discard("genart.errors")


def test_only_the_modules_architecture_md_names_import_ray():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("Modules that import Ray:"))
    named = {module_name(ROOT / p) for p in re.findall(r"`(genart/[\w/]+\.py)`", line)}
    importing = {m for m, (_, ray) in GRAPH.items() if ray}
    assert importing == named


def test_the_top_level_holds_the_face_and_the_ground_floor():
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == [
        "__init__.py",
        "cpu_path.py",
        "errors.py",
        "ids.py",
        "images.py",
        "ray_session.py",
        "warm_state.py",
    ]


def test_no_module_is_over_about_400_lines():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > 420}
    assert long == {}


def _edges(tmp: Path, source: str, name: str = "genart.storage.fs") -> set[str]:
    """The edges `imports` finds in `source`, as if it were module `name`."""
    saved = MODULES[name]
    (tmp / "probe.py").write_text(source)
    try:
        MODULES[name] = tmp / "probe.py"
        return imports(name)[0]
    finally:
        MODULES[name] = saved


def test_a_use_of_the_package_face_is_an_edge_to_it(tmp_path):
    assert _edges(tmp_path, "import genart\nv = genart.__version__\n") == {"genart"}
    assert _edges(tmp_path, "def f():\n    import genart\n") == {"genart"}
    assert _edges(tmp_path, "from genart import load_bundle\n") == {"genart"}
    assert _edges(tmp_path, "from genart import __version__\n") == set()
    assert _edges(tmp_path, "from genart.errors import StorageError\n") == {"genart.errors"}
    assert rank("genart") is None and rank("genart.ray_session") == 0


def test_architecture_md_names_every_module():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    unnamed = [
        str(p.relative_to(PACKAGE))
        for p in sorted(PACKAGE.rglob("*.py"))
        if p.name not in ("__init__.py", "__main__.py") and f"`{p.name}`" not in text
    ]
    assert unnamed == []
