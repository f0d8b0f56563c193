"""Nothing in the package unpickles, evals or runs remote code unless the user asks for it.

Weights load through safetensors or `torch.load(weights_only=True)`; configs are parsed by
jsonargparse/omegaconf, never evaluated. The scan reads the syntax tree of every module, so a
docstring that mentions pickle is fine and a call hidden behind an alias is still found.
"""

import ast
import inspect
from pathlib import Path

import pytest

import saelight
from saelight.backbones.hf import HFBackbone

PACKAGE = Path(saelight.__file__).parent
SOURCES = sorted(PACKAGE.rglob("*.py"))
UNSAFE_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "shelve", "marshal", "joblib"}


def _name(node: ast.AST) -> str:
    """Dotted name of a call target: `torch.load`, `eval`, `pd.read_pickle`..."""
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def _keyword(call: ast.Call, name: str) -> object:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value.value if isinstance(kw.value, ast.Constant) else "<expr>"
    return None


def findings(source: str) -> list[str]:
    """Unsafe constructs in one module's source, as 'line: what' strings."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            if {n.split(".")[0] for n in names} & UNSAFE_MODULES:
                found.append(f"{node.lineno}: imports {names}")
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        if name in ("eval", "exec", "builtins.eval", "builtins.exec") and node.args:
            found.append(f"{node.lineno}: {name}(...)")
        if name.endswith("torch.load") and _keyword(node, "weights_only") is not True:
            found.append(f"{node.lineno}: torch.load without weights_only=True")
        if name.endswith(("read_pickle", "unsafe_load")) or name == "yaml.load":
            found.append(f"{node.lineno}: {name}(...)")
        if _keyword(node, "allow_pickle") is True or _keyword(node, "trust_remote_code") is True:
            found.append(f"{node.lineno}: {name} with allow_pickle/trust_remote_code=True")
    return found


def test_the_scan_catches_what_it_looks_for() -> None:
    bad = (
        "import pickle\nfrom dill import loads\nimport torch\n"
        "torch.load(f)\ntorch.load(f, weights_only=False)\nx = eval(s)\nm.eval()\n"
        "np.load(p, allow_pickle=True)\nAutoModel.from_pretrained(p, trust_remote_code=True)\n"
        "pd.read_pickle(p)\ntorch.load(f, weights_only=True)\n"
    )
    lines = [int(f.split(":")[0]) for f in findings(bad)]
    assert lines == [1, 2, 4, 5, 6, 8, 9, 10]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_pickle_eval_or_unguarded_torch_load(path: Path) -> None:
    assert findings(path.read_text()) == []


def test_remote_code_is_off_unless_set() -> None:
    default = inspect.signature(HFBackbone.__init__).parameters["trust_remote_code"].default
    assert default is False


class _Marker:
    """Unpickling this writes a file: a pickle-loading reader would run it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # noqa: ANN204
        return (open, (self.path, "w"))


def test_sae_weights_are_safetensors_and_a_pickle_is_never_run(tmp_path: Path) -> None:
    import torch

    from saelight.io.errors import SaelightError
    from saelight.sae import TopKSAE, base

    assert base.WEIGHTS_FILE.endswith(".safetensors")
    TopKSAE(8, d_sae=16, k=2).save_pretrained(tmp_path / "sae")
    marker = tmp_path / "ran"
    torch.save({"W_enc": _Marker(str(marker))}, tmp_path / "sae" / base.WEIGHTS_FILE)
    with pytest.raises(SaelightError, match=base.WEIGHTS_FILE):
        base.SAE.from_pretrained(tmp_path / "sae")
    assert not marker.exists()
