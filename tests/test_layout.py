"""The package's layout: dependencies run one way, and imports sit at the top of a module.

Read from the source with ``ast`` (nothing is imported), so a cycle tied by an import inside a function is
found as surely as one at module level. Imports made with importlib are not seen (see ``LAZY_BY_DESIGN``).
"""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "vae_zoo"

# Heavy third-party packages a function may import lazily, so that `vae-zoo list` and `--help` start
# without them (or so that an optional extra is needed only by the feature that uses it).
HEAVY = {"tensorflow", "tensorflow_probability", "tensorflow_datasets", "tf_keras", "keras", "keras_tuner", "sklearn",
         "matplotlib", "scipy", "PIL", "constriction", "tf2onnx", "onnx", "onnxruntime", "huggingface_hub", "soundfile",
         "librosa", "datasets", "tokenizers",
         "pillow_jxl"}  # the last: an optional plugin, imported where it is used so that vae_zoo works without it

# Packages that import their modules with importlib (which ast does not follow): vae_zoo.models imports every
# variant, so that adding a variant is adding its file. The variants import vae_zoo.registry to register
# themselves, and the registry imports vae_zoo.models lazily, on the first lookup of a name.
LAZY_BY_DESIGN = {"vae_zoo.models"}


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(node, importer):
    """The vae_zoo modules an ``import`` or ``from ... import`` statement names (a name that is a
    submodule counts as that submodule; one that is not, as the module it comes from)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in MODULES]
    package = importer if MODULES[importer].name == "__init__.py" else importer.rpartition(".")[0]
    base = node.module or ""
    if node.level:  # relative: from . import x, from ..io import y
        anchor = package.split(".")
        base = ".".join(anchor[: len(anchor) - node.level + 1] + ([base] if base else []))
    if base not in MODULES:
        return []
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]


def parents(tree):
    return {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}


def in_function(node, parent_of):
    while node in parent_of:
        node = parent_of[node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return True
    return False


def imports(name, source=None):
    """``(statement, in_function)`` for every import statement of module ``name`` (or of ``source`` read as it)."""
    tree = ast.parse(MODULES[name].read_text() if source is None else source)
    parent_of = parents(tree)
    return [(node, in_function(node, parent_of)) for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]


def import_graph():
    graph = {}
    for name in MODULES:
        targets = set()
        for node, _ in imports(name):
            targets.update(with_packages(imported_modules(node, name), name))
        targets.discard(name)
        graph[name] = sorted(targets)
    return graph


def with_packages(targets, importer):
    """``targets`` and the packages whose __init__ importing them runs first: importing a.b.c from outside
    package a.b runs a.b's __init__ (a package's own modules reach their siblings through it while it is
    being imported: that runs down, not round)."""
    found = set(targets)
    for target in targets:
        parts = target.split(".")
        packages = (".".join(parts[:i]) for i in range(2, len(parts)))
        found.update(p for p in packages if p in MODULES and not importer.startswith(p + "."))
    return found


def find_cycle(graph):
    """One cycle of ``graph`` as a list of nodes (first == last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in graph.get(node, ()):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        state[node] = "done"
        stack.pop()
        return None

    for node in graph:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) in (["a", "b", "c", "a"],)
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) is None


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    assert "vae_zoo.training.runner" in graph["vae_zoo.cli"]  # cli imports it only inside `train`


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def imports_tensorflow_at_module_level(name, seen=()):
    """Whether importing vae_zoo module ``name`` imports TensorFlow (itself, or through a vae_zoo module it imports
    at module level), or is one of the packages that import their modules dynamically (``LAZY_BY_DESIGN``)."""
    if name in LAZY_BY_DESIGN:
        return True
    module_level = [node for node, lazy in imports(name) if not lazy]
    if any(m.split(".")[0] in ("tensorflow", "keras", "tensorflow_probability") for node in module_level for m in top_level(node)):
        return True
    ours = {m for node in module_level for m in imported_modules(node, name)} - {name, *seen}
    return any(imports_tensorflow_at_module_level(m, (*seen, name)) for m in ours)


def top_level(node):
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    return [node.module or ""] if not node.level else []


def explains(line):
    """Whether ``line`` carries a comment that says something (a bare ``# noqa: F401`` does not)."""
    comment = line.partition("#")[2]
    return bool(re.sub(r"noqa(:\s*[A-Z]+\d+(,\s*[A-Z]+\d+)*)?", "", comment).strip(" #"))


def lazy_import_problems(name, source=None):
    path = MODULES[name]
    lines = (path.read_text() if source is None else source).splitlines()
    problems = []
    for node, lazy in imports(name, source):
        if not lazy:
            continue
        heavy = any(m.split(".")[0] in HEAVY for m in top_level(node))
        heavy_ours = [m for m in with_packages(imported_modules(node, name), name) if imports_tensorflow_at_module_level(m)]
        said = explains(lines[node.lineno - 1]) or (lines[node.lineno - 2].strip().startswith("#") and explains(lines[node.lineno - 2]))
        where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {lines[node.lineno - 1].strip()}"
        if not (heavy or heavy_ours):
            problems.append(f"{where}  (not a heavy dependency: import it at the top of the module)")
        elif not said:
            problems.append(f"{where}  (a deliberate lazy import needs a comment saying why)")
    return problems


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_inside_functions_are_deliberate_lazy_imports_of_heavy_dependencies(name):
    problems = lazy_import_problems(name)
    assert not problems, "\n".join(problems)


def test_the_lazy_import_check_finds_what_it_should():
    source = """
def light():
    from vae_zoo.io import folders
def unexplained():
    import matplotlib  # noqa: F401
def explained():
    import matplotlib  # lazy: heavy, and only this plot needs it
def explained_above():
    # Lazy: the runner imports TensorFlow.
    from vae_zoo.training import runner
"""
    problems = lazy_import_problems("vae_zoo.catalog", source)
    assert len(problems) == 2, problems
    assert "folders" in problems[0] and "import it at the top" in problems[0]
    assert "matplotlib" in problems[1] and "needs a comment" in problems[1]
