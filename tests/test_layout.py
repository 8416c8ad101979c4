"""The package's layers (shared/DESIGN.md): a module imports only from layers below its own, and
no imports form a cycle.  Walks every module's import statements with ast, including imports
inside functions (a function-level import is still an edge of the graph)."""

import ast
import os

import pytest

PKG = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fpsim")

# lowest first; modules of one package (kernels/, formats/, nn/) form one layer
LAYERS = [
    ["kernels"],
    ["formats"],
    ["_args"],
    ["quantize"],
    ["arith"],
    ["accum"],
    ["engines"],
    ["gemm"],
    ["conv"],
    ["scaling", "probe"],
    ["data"],
    ["nn"],
    ["sweep"],                     # runs nn.training, so above it
    ["validate"],
    ["cli"],
    ["__main__"],
    ["__init__"],
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def modules():
    """{dotted name relative to fpsim: path}."""
    out = {}
    for root, _, files in os.walk(PKG):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(root, f), PKG)[:-3].replace(os.sep, ".")
                out[rel] = os.path.join(root, f)
    return out


def top(name):
    """The layer key of a module: its first component ('formats.float' -> 'formats')."""
    head = name.split(".")[0]
    return "__init__" if name == "__init__" else head


def imports(rel, path):
    """fpsim-relative module names that module ``rel`` imports."""
    tree = ast.parse(open(path).read())
    pkg = rel.split(".")[:-1] if not rel.endswith("__init__") else rel.split(".")[:-1]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module and node.module.startswith("fpsim"):
                    base = node.module.split(".")[1:]
                else:
                    continue
            else:
                base = pkg[:len(pkg) - (node.level - 1)] + (node.module.split(".")
                                                            if node.module else [])
            for alias in node.names:
                cand = ".".join(base + [alias.name])
                out.add(cand if cand in MODS or cand + ".__init__" in MODS else ".".join(base))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("fpsim."):
                    out.add(".".join(alias.name.split(".")[1:]))
    return {m[:-len(".__init__")] if m.endswith(".__init__") else m for m in out if m}


MODS = modules()
GRAPH = {rel: imports(rel, path) for rel, path in MODS.items()}


def test_every_module_has_a_layer():
    missing = sorted({top(m) for m in MODS if top(m) not in LAYER})
    assert not missing, f"modules without a layer in tests/test_layout.py: {missing}"


@pytest.mark.parametrize("rel", sorted(MODS))
def test_imports_go_down(rel):
    mine = LAYER[top(rel)]
    for dep in GRAPH[rel]:
        if top(dep) == top(rel):
            continue                       # inside one package: checked by the cycle test
        assert LAYER.get(top(dep), -1) < mine or top(rel) == "__init__", \
            f"fpsim.{rel} (layer {mine}) imports fpsim.{dep} (layer {LAYER.get(top(dep))})"


def test_no_cycles():
    names = {m[:-len(".__init__")] if m.endswith(".__init__") else m: d
             for m, d in GRAPH.items()}
    state = {}

    def visit(m, stack):
        state[m] = 1
        for d in names.get(m, ()):
            if d == m or d not in names:
                continue
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack + [m, d]))
            if d not in state:
                visit(d, stack + [m])
        state[m] = 2

    for m in names:
        if m not in state:
            visit(m, [])


def test_the_walker_sees_edges():
    """Not vacuous: known edges are found."""
    assert "formats" in GRAPH["quantize"] or any(d.startswith("formats") for d in GRAPH["quantize"])
    assert any(d.startswith("kernels") for d in GRAPH["gemm"] | GRAPH["accum"])
