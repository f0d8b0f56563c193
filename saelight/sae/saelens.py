"""The `cfg.json` fields SAELens needs to load a saelight export with `SAE.load_from_disk`.

Checked against sae-lens 6.54 (`SAEConfig`, its subclasses and `handle_config_defaulting`); the
test `tests/sae/test_saelens.py` loads every architecture with it. What SAELens sees:

    saelight            SAELens architecture   what SAELens computes
    topk                topk                   the same codes (TopK_k then ReLU)
    hierarchical_topk   topk                   TopK at the export's `k` only; the ladder is lost
    batchtopk           jumprelu               the inference rule z·1[z > θ], θ one per latent
    relu                standard               the same codes
    jumprelu            jumprelu               the same codes (`threshold`, not its log)

Input normalisation is folded into the weights at export, so `normalize_activations` is "none";
`b_dec` is always written (zeros without a decoder bias), so `apply_b_dec_to_input` is True.
"""

from __future__ import annotations

from typing import Any

import torch

SAELENS_CFG_VERSION = "6.0.0"
"""The config layout written: SAELens reads the nested `metadata` block only from 6.0.0 on (older
configs go through `handle_pre_6_0_config`, which rebuilds metadata from top-level keys)."""


def hook_name(layer: int) -> str:
    """The hook an SAE of backbone layer `layer` reads: the HF `output_hidden_states` index."""
    return f"hidden_states.{layer}"


def saelens_cfg(dtype: torch.dtype, metadata: dict[str, Any]) -> dict[str, Any]:
    """The fields common to every architecture; `SAE.saelens_fields` adds its own (e.g. `k`).

    Args:
        dtype: dtype of the exported tensors (SAELens casts the weights to `dtype` on load).
        metadata: the export's metadata keys; `backbone` (a backbone identity or a name) gives
            `model_name`/`model_class_name`, and `layer` gives `hook_name`/`hook_layer`.
    """
    backbone = metadata.get("backbone")
    if isinstance(backbone, dict):
        model_name, model_class = backbone.get("model"), backbone.get("class")
    else:
        model_name, model_class = backbone, None
    layer = metadata.get("layer")
    return {
        "dtype": str(dtype).removeprefix("torch."),
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": {
            "sae_lens_version": SAELENS_CFG_VERSION,
            # Not trained by SAELens; its own loaders for other formats write None here too.
            "sae_lens_training_version": None,
            "model_name": model_name,
            "model_class_name": model_class,
            "hook_name": None if layer is None else hook_name(int(layer)),
            "hook_layer": layer,
        },
    }
