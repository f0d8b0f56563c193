"""The layering rules of docs/architecture.md, checked on the source: who may import whom, file
sizes, and which modules sit at the top of the package."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "saelight"
TOP_LEVEL = {"__init__.py", "cli.py", "module.py", "grid.py"}
UPPER = {"audio", "backbones", "cache", "data", "callbacks", "cli", "evaluation", "report"}
UPPER |= {"explorer", "module", "grid", "commands"}
BELOW_COMMANDS = {"commands", "cli"}
FORBIDDEN = {
    "sae": UPPER,
    "metrics": UPPER | {"sae"},
    "io": UPPER | {"sae", "metrics"},
    "audio": {"sae", "module", "grid", "callbacks", "evaluation", "report", "explorer", "cli"},
    "cache": {"sae", "module", "grid", "callbacks", "evaluation", "report", "explorer", "cli"},
    "backbones": BELOW_COMMANDS | {"callbacks", "evaluation", "report", "explorer", "module"},
    "data": BELOW_COMMANDS | {"callbacks", "evaluation", "report", "explorer"},
    "evaluation": BELOW_COMMANDS | {"callbacks"},
    "report": BELOW_COMMANDS | {"callbacks"},
    "explorer": BELOW_COMMANDS | {"callbacks", "report"},
    "callbacks": BELOW_COMMANDS,
    "module": BELOW_COMMANDS | {"callbacks"},
    "grid": BELOW_COMMANDS | {"callbacks", "module"},
    "commands": {"cli"},
}


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node but those under `if TYPE_CHECKING:` (annotations only, never imported)."""
    skip = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for n in ast.walk(block)
    }
    return [n for n in ast.walk(tree) if id(n) not in skip]


def imported_modules(path: Path) -> set[str]:
    """Every `saelight...` module or name a file imports at run time (function-level too)."""
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("saelight")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("saelight"):
                found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
    return found


def saelight_imports(path: Path) -> set[str]:
    """First component under `saelight.` of every import in a file (function-level ones too)."""
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found |= {n.split(".")[1] for n in names if n.startswith("saelight.")}
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_packages_import_nothing_above_them(package: str) -> None:
    bad = {
        str(path.relative_to(PACKAGE)): sorted(saelight_imports(path) & FORBIDDEN[package])
        for path in _files_of(package)
    }
    assert not {k: v for k, v in bad.items() if v}


def test_no_file_over_400_lines() -> None:
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert not long


def test_only_the_entry_points_sit_at_the_top() -> None:
    assert {p.name for p in PACKAGE.glob("*.py")} <= TOP_LEVEL


def _files_of(package: str) -> list[Path]:
    """The files of a subpackage, or the one top-level module of that name."""
    folder = PACKAGE / package
    return sorted(folder.rglob("*.py")) if folder.is_dir() else [PACKAGE / f"{package}.py"]


def module_graph() -> dict[str, set[str]]:
    """saelight module -> the saelight modules it imports at run time."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return {
        name: {m for m in imported_modules(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def test_no_import_cycles() -> None:
    graph, state, cycles = module_graph(), {}, []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                cycles.append(trail[trail.index(dep) :] + [dep])
            elif dep not in state:
                visit(dep, [*trail, dep])
        state[node] = "done"

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert not cycles


def test_nobody_imports_the_cli_and_only_it_imports_commands() -> None:
    graph = module_graph()
    importers_of_cli = {m for m, deps in graph.items() if "saelight.cli" in deps}
    assert not importers_of_cli
    outside = {
        m: sorted(d for d in deps if d.startswith("saelight.commands"))
        for m, deps in graph.items()
        if not m.startswith(("saelight.commands", "saelight.cli"))
    }
    assert not {m: d for m, d in outside.items() if d}


def test_every_verb_is_a_module_of_commands() -> None:
    from saelight.cli import VERBS

    for target in VERBS.values():
        module, _, function = target.partition(":")
        assert module.startswith("saelight.commands."), target
        assert (PACKAGE / "commands" / f"{module.rsplit('.', 1)[1]}.py").is_file(), target


@pytest.mark.parametrize("argv", [["--help"], ["report", "--help"], ["push", "--help"]])
def test_help_imports_neither_lightning_nor_transformers(argv: list[str]) -> None:
    """`saelight --help` (and a light verb's) answers without the heavy imports."""
    script = (
        "import sys\n"
        "from saelight.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "heavy = {m.split('.')[0] for m in sys.modules} & {'lightning', 'transformers', 'wandb'}\n"
        "print('HEAVY', sorted(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "usage: saelight" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "HEAVY []"
