"""Imports run only down the layers: every import of every module, read with ``ast``.

The layers of ``paddlevideo`` from the bottom (a part may import the parts listed for it,
and itself):

    fields                                    nothing at all
    utils                                     -
    loader, metrics, solver, modeling         utils, fields
    evaluation                                + loader, metrics, modeling
    retrieval, extraction                     + evaluation
    schema (where the registries meet)        loader, metrics, modeling, solver, utils
    tasks                                     everything of paddlevideo
    main.py, tools/                           paddlevideo (and tools/ itself)

Imports inside functions count as well: a lazy import that runs up a layer is still one.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "paddlevideo"

BASE = {"utils", "fields"}
ALLOWED = {
    "fields": set(),
    "utils": {"utils"},
    "loader": BASE | {"loader"},
    "metrics": BASE | {"metrics"},
    "solver": BASE | {"solver"},
    "modeling": BASE | {"modeling"},
    "evaluation": BASE | {"loader", "metrics", "modeling", "evaluation"},
    "retrieval": BASE | {"loader", "metrics", "modeling", "evaluation", "retrieval"},
    "extraction": BASE | {"loader", "modeling", "extraction"},
    "schema": BASE | {"loader", "metrics", "modeling", "solver"},
    "tasks": BASE | {"loader", "metrics", "solver", "modeling", "evaluation", "retrieval", "extraction", "schema",
                     "tasks"},
}
# Imports allowed to run up a layer: none.
KNOWN = set()


def _module_of(path, root):
    """(module path parts, is a package) of a file under ``root``: paddlevideo/loader/builder.py ->
    ([paddlevideo, loader, builder], False)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts, parts[-1] == "__init__"


def imported_modules(path, root=ROOT):
    """Every module ``path`` imports (absolute dotted names), at any depth of the file."""
    parts, is_package = _module_of(path, root)
    package = parts if is_package else parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module
            # "from . import x" may name submodules: count each as imported.
            found += [prefix] if node.module else [f"{prefix}.{alias.name}" for alias in node.names]
    return found


def _part(module):
    """The layer part of a paddlevideo module name (None for other modules)."""
    names = module.split(".")
    if names[0] != "paddlevideo":
        return None
    return names[1] if len(names) > 1 else ""


def _files(folder):
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def upward_imports():
    """(file, part it imports) for every import of paddlevideo that its layer does not allow."""
    bad = []
    for path in _files(PACKAGE):
        rel = path.relative_to(PACKAGE)
        own = rel.parts[0].removesuffix(".py")
        if own == "__init__":
            continue  # the package's face imports its parts to fill the registries
        for module in imported_modules(path):
            part = _part(module)
            if module.split(".")[0] == "tools":
                bad.append((rel.as_posix(), "tools"))
            elif part is not None and part not in ALLOWED[own]:
                bad.append((rel.as_posix(), part))
    return bad


def test_every_part_of_the_package_has_a_layer():
    parts = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in _files(PACKAGE)} - {"__init__"}
    assert parts <= set(ALLOWED), f"add {sorted(parts - set(ALLOWED))} to ALLOWED with the layers it may import"


def test_no_import_runs_up_a_layer():
    bad = sorted(set(upward_imports()) - KNOWN)
    assert not bad, "imports running up a layer: " + ", ".join(f"{f} imports {p}" for f, p in bad)


def test_fields_imports_nothing():
    assert imported_modules(PACKAGE / "fields.py") == []


def test_the_check_sees_relative_and_lazy_imports(tmp_path):
    """The reader resolves relative imports at any depth and sees imports inside functions."""
    pkg = tmp_path / "paddlevideo" / "loader"
    pkg.mkdir(parents=True)
    src = pkg / "x.py"
    src.write_text("from ..tasks import train\n\ndef f():\n    from ..retrieval.scoring import score_matrix\n"
                   "    import tools.search\n")
    names = imported_modules(src, tmp_path)
    assert names == ["paddlevideo.tasks", "paddlevideo.retrieval.scoring", "tools.search"]
    assert [_part(n) for n in names] == ["tasks", "retrieval", None]


@pytest.mark.parametrize("entry", ["main.py", *[p.relative_to(ROOT).as_posix() for p in _files(ROOT / "tools")]])
def test_entry_points_import_only_the_package_and_tools(entry):
    """main.py and the tools sit on top: they import paddlevideo (and tools/), never tests/."""
    modules = imported_modules(ROOT / entry)
    assert not [m for m in modules if m.split(".")[0] == "tests"]


def test_tools_do_not_edit_sys_path():
    """One mechanism makes ``python tools/x.py`` importable (tools/_path.py); no tool edits sys.path itself."""
    editing = []
    for path in _files(ROOT / "tools"):
        if path.name == "_path.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", None) == "sys":
                editing.append(path.relative_to(ROOT).as_posix())
                break
    assert editing == []


def test_search_does_not_import_predict():
    """What the two tools share lives in the package (retrieval/predictor.py)."""
    assert not [m for m in imported_modules(ROOT / "tools" / "search.py") if m.startswith("tools.predict")]


def import_cycles():
    """Cycles among the package's modules (lazy imports included; ``__init__`` files, which import
    their parts to fill the registries, left out): a list of module-name lists."""
    graph = {}
    for path in _files(PACKAGE):
        if path.name == "__init__.py":
            continue
        name = ".".join(_module_of(path, ROOT)[0])
        graph[name] = set()
        for module in imported_modules(path):
            while module and module not in graph and "." in module:  # "pkg.mod.name" -> "pkg.mod"
                if (ROOT / Path(*module.split("."))).with_suffix(".py").exists():
                    break
                module = module.rsplit(".", 1)[0]
            graph[name].add(module)
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_no_module_imports_itself_through_others():
    assert import_cycles() == []
