"""SAELens loads every saelight export and computes the same codes and reconstructions.

SAELens lives in its own virtualenv (`.ci/run` builds `<repo>/.venv-saelens`; another interpreter
can be named by SAELIGHT_SAELENS_PYTHON), so this test exports here, loads there with
`sae_lens.SAE.load_from_disk` in one subprocess, and compares what comes back.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from saelight.sae import SAE

from .contract import D_IN, D_SAE, K, data, train_a_little

REPO = Path(__file__).resolve().parents[2]
# name -> (saelight architecture, init args, SAELens class it loads as)
EXPORTS: dict[str, tuple[str, dict[str, Any], str]] = {
    "topk": ("topk", {"k": K}, "TopKSAE"),
    "topk_paper": (
        "topk",
        {"k": K, "decoder_bias": False, "unit_norm_decoder": False, "b_dec_init": "zeros"},
        "TopKSAE",
    ),
    "batchtopk": ("batchtopk", {"k": K}, "JumpReLUSAE"),
    "hierarchical_topk": ("hierarchical_topk", {"ks": [2, K]}, "TopKSAE"),
    "relu": ("relu", {}, "StandardSAE"),
    "jumprelu": ("jumprelu", {"threshold_init": 0.5}, "JumpReLUSAE"),
}
LOAD_SCRIPT = """
import json, sys
from pathlib import Path
import torch
from safetensors.torch import load_file, save_file
from sae_lens import SAE

root = Path(sys.argv[1])
x = load_file(str(root / "x.safetensors"))["x"]
tensors, info = {}, {}
for name in json.loads((root / "names.json").read_text()):
    sae = SAE.load_from_disk(root / name)
    with torch.no_grad():
        z = sae.encode(x)
        tensors[name + "/z"], tensors[name + "/x_hat"] = z, sae.decode(z)
    info[name] = {"class": type(sae).__name__, "metadata": sae.cfg.metadata.to_dict()}
save_file(tensors, str(root / "saelens.safetensors"))
(root / "saelens.json").write_text(json.dumps(info))
"""


def saelens_python() -> Path:
    """The SAELens venv's interpreter; a skip outside CI when it is missing, a failure in CI."""
    named = os.environ.get("SAELIGHT_SAELENS_PYTHON")
    python = Path(named) if named else REPO / ".venv-saelens" / "bin" / "python"
    if not python.exists():
        reason = f"no SAELens interpreter at {python} (.ci/run builds .venv-saelens)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return python


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, SAE]]:
    """Trained exports of every architecture (input normalisation folded in), loaded by SAELens."""
    python = saelens_python()
    root = tmp_path_factory.mktemp("saelens")
    x = data(seed=3)
    saes: dict[str, SAE] = {}
    for name, (arch, kwargs, _) in EXPORTS.items():
        torch.manual_seed(0)
        sae = SAE.registry[arch](D_IN, D_SAE, normalize_input=True, **kwargs)
        train_a_little(sae, data())
        saes[name] = sae.eval()
        sae.save_pretrained(root / name, backbone={"model": "tiny/hubert", "class": "H"}, layer=3)
    save_file({"x": x}, str(root / "x.safetensors"))
    (root / "names.json").write_text(json.dumps(list(EXPORTS)))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [str(python), "-c", LOAD_SCRIPT, str(root)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return root, saes


@pytest.mark.parametrize("name", list(EXPORTS))
def test_saelens_codes_and_reconstructions_match(
    name: str, exported: tuple[Path, dict[str, SAE]]
) -> None:
    root, saes = exported
    theirs = load_file(str(root / "saelens.safetensors"))
    sae, x = saes[name], data(seed=3)
    with torch.no_grad():
        z = sae.encode(x)
        x_hat = sae.decode(z)
    assert (z > 0).any() and (z == 0).any()
    torch.testing.assert_close(theirs[f"{name}/z"], z, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(theirs[f"{name}/x_hat"], x_hat, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(EXPORTS))
def test_saelens_sees_the_documented_class_and_metadata(
    name: str, exported: tuple[Path, dict[str, SAE]]
) -> None:
    root, _ = exported
    info = json.loads((root / "saelens.json").read_text())[name]
    assert info["class"] == EXPORTS[name][2]
    metadata = info["metadata"]
    assert metadata["model_name"] == "tiny/hubert" and metadata["model_class_name"] == "H"
    assert metadata["hook_name"] == "hidden_states.3" and metadata["hook_layer"] == 3
