"""HFBackbone on tiny saved models of every architecture, loaded through `from_pretrained`."""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import ASTForAudioClassification, BertConfig, BertModel

from saelight.backbones import HFBackbone, mean_pool

from .tiny_models import BUILDERS, LENGTHS, SR

pytestmark = pytest.mark.filterwarnings(
    "ignore:At least one mel filter has all zero values:UserWarning",  # AST's own 128-bin filters
    "ignore:Support for mismatched key_padding_mask:UserWarning",  # inside WavLM's attention
)
ARCHS = list(BUILDERS)
# Architectures that pad a batch with an attention mask and per-frame norms (the others batch only
# clips of equal length).
MASKED = {"wav2vec2_lv60", "wavlm"}


def expected_frames(name: str, n: int) -> int:
    """Valid frames (tokens for AST) of an n-sample clip, from each architecture's geometry."""
    if name == "ast":  # 25 ms / 10 ms fbank, 16x16 patches with stride 10, 12 frequency rows
        fbank = 1 + (n - 400) // 160
        return 2 + 12 * math.ceil(fbank / 10)
    if name == "whisper":  # 10 ms mel hop, then a stride-2 conv
        return math.ceil(math.ceil(n / 160) / 2)
    for kernel, stride in zip((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2), strict=True):
        n = (n - kernel) // stride + 1
    return n


def transformer_layers(net: nn.Module) -> nn.ModuleList:
    return next(
        m
        for n, m in net.named_modules()
        if isinstance(m, nn.ModuleList) and n.split(".")[-1] in ("layers", "layer")
    )


@pytest.mark.parametrize("name", ARCHS)
def test_loads_own_class_frozen(model_dirs: dict[str, Path], name: str) -> None:
    backbone = HFBackbone(str(model_dirs[name]))
    assert backbone.model_class == BUILDERS[name][1]
    if name.startswith("wavlm"):  # the paper's code loaded WavLM with the wav2vec2 class
        assert type(backbone.net).__name__ == "WavLMModel"
    assert not backbone.net.training
    assert not any(p.requires_grad for p in backbone.net.parameters())
    assert (backbone.sample_rate, backbone.hidden_size, backbone.num_layers) == (SR, 32, 2)
    assert backbone.layers == [0, 1, 2]
    identity = backbone.identity()
    assert identity["class"] == BUILDERS[name][1]
    assert identity["model"] == str(model_dirs[name])
    assert {"revision", "sample_rate", "hidden_size", "num_layers"} <= set(identity)


@pytest.mark.parametrize("name", ARCHS)
def test_extract_shapes_and_mask(
    model_dirs: dict[str, Path], waves: list[np.ndarray], name: str
) -> None:
    backbone = HFBackbone(str(model_dirs[name]))
    hidden, mask = backbone.extract(waves)
    # AST: CLS + distillation + 12 x 25 patches; Whisper: its whole (2 s here) window at 50 Hz.
    frames = {"ast": 302, "whisper": 100}.get(name, expected_frames(name, max(LENGTHS)))
    assert mask.shape == (2, frames) and mask.dtype == torch.bool
    assert mask.sum(1).tolist() == [expected_frames(name, n) for n in LENGTHS]
    assert sorted(hidden) == [0, 1, 2]
    for h in hidden.values():
        assert h.shape == (2, frames, 32) and h.dtype == torch.float32
        assert torch.isfinite(h).all()
        assert (h[~mask] == 0).all()


@pytest.mark.parametrize("name", ARCHS)
def test_layer_zero_is_first_layer_input(
    model_dirs: dict[str, Path], waves: list[np.ndarray], name: str
) -> None:
    backbone = HFBackbone(str(model_dirs[name]), layers=[2, 0])
    assert backbone.layers == [0, 2]
    blocks, seen = transformer_layers(backbone.net), {}
    pre = blocks[0].register_forward_pre_hook(lambda m, args: seen.update(first=args[0]))
    post = blocks[-1].register_forward_hook(lambda m, args, out: seen.update(last=out))
    hidden, mask = backbone.extract(waves[:1])
    pre.remove(), post.remove()
    last = seen["last"][0] if isinstance(seen["last"], tuple) else seen["last"]
    if name == "whisper":  # Whisper's last hidden state carries the encoder's final layer norm
        last = backbone.net.layer_norm(last)
    valid = mask[0]
    torch.testing.assert_close(hidden[0][0, valid], seen["first"][0, valid])
    torch.testing.assert_close(hidden[2][0, valid], last[0, valid])


@pytest.mark.parametrize("name", ARCHS)
def test_padding_does_not_change_pooled_vectors(
    model_dirs: dict[str, Path], waves: list[np.ndarray], name: str
) -> None:
    backbone = HFBackbone(str(model_dirs[name]))
    if backbone.kind == "waveform":  # the masked archs really share one padded batch
        assert backbone.plan_batches(list(LENGTHS)) == ([[0, 1]] if name in MASKED else [[0], [1]])
    batched, batched_mask = backbone.extract(waves)
    alone, alone_mask = backbone.extract(waves[1:])
    for layer in backbone.layers:
        torch.testing.assert_close(
            mean_pool(batched[layer], batched_mask)[1],
            mean_pool(alone[layer], alone_mask)[0],
            atol=1e-5,
            rtol=1e-4,
        )


def test_group_norm_models_batch_equal_lengths_only(model_dirs: dict[str, Path]) -> None:
    backbone = HFBackbone(str(model_dirs["wavlm_base_plus"]))
    assert backbone.plan_batches([800, 1600, 800, 1600]) == [[1, 3], [0, 2]]
    masked = HFBackbone(str(model_dirs["wavlm"]), max_batch_seconds=0.15)
    assert masked.plan_batches([800, 1600, 800, 1600]) == [[1], [3], [0, 2]]


def test_max_batch_seconds_splits_without_changing_results(
    model_dirs: dict[str, Path], waves: list[np.ndarray]
) -> None:
    whole = HFBackbone(str(model_dirs["wav2vec2_lv60"]))
    split = HFBackbone(str(model_dirs["wav2vec2_lv60"]), max_batch_seconds=0.5)
    assert split.plan_batches(list(LENGTHS)) == [[0], [1]]
    (h1, m1), (h2, m2) = whole.extract(waves), split.extract(waves)
    assert torch.equal(m1, m2)
    torch.testing.assert_close(h1[2], h2[2], atol=1e-5, rtol=1e-4)


def test_bfloat16_autocast_returns_float32(
    model_dirs: dict[str, Path], waves: list[np.ndarray]
) -> None:
    fp32, _ = HFBackbone(str(model_dirs["hubert"])).extract(waves)
    bf16, _ = HFBackbone(str(model_dirs["hubert"]), dtype="bfloat16").extract(waves)
    assert bf16[2].dtype == torch.float32
    cos = nn.functional.cosine_similarity(fp32[2].flatten(), bf16[2].flatten(), dim=0)
    assert cos > 0.99


def test_ast_mask_padding_false_keeps_every_token(
    model_dirs: dict[str, Path], waves: list[np.ndarray]
) -> None:
    masked, mask = HFBackbone(str(model_dirs["ast"])).extract(waves)
    full, all_tokens = HFBackbone(str(model_dirs["ast"]), mask_padding=False).extract(waves)
    assert all_tokens.all()
    assert mask[:, :2].all()  # CLS and distillation tokens always count
    torch.testing.assert_close(full[1][mask], masked[1][mask])


@pytest.mark.parametrize(
    ("name", "rate", "shortest"), [("hubert", 50, 400), ("ast", 10, 400), ("whisper", 50, 1)]
)
def test_frame_rate_and_min_samples(
    model_dirs: dict[str, Path], name: str, rate: float, shortest: int
) -> None:
    backbone = HFBackbone(str(model_dirs[name]))
    assert backbone.frame_rate_hz == pytest.approx(rate)
    assert backbone.min_samples == shortest
    _, mask = backbone.extract([np.zeros(shortest, np.float32)])
    assert mask.sum() >= 1
    if shortest > 1:
        with pytest.raises(ValueError, match="min_samples"):
            backbone.extract([np.zeros(shortest - 1, np.float32)])


def test_fixed_length_extractor_warns_on_truncation(
    model_dirs: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    backbone = HFBackbone(str(model_dirs["ast"]))
    with caplog.at_level(logging.WARNING, logger="saelight.backbones.hf"):
        _, mask = backbone.extract([np.zeros(3 * SR, np.float32)])
    assert "truncated" in caplog.text
    assert mask.all()


@pytest.mark.parametrize("layers", [[3], [0, 5], [-1]])
def test_layer_beyond_depth_names_valid_range(
    model_dirs: dict[str, Path], layers: list[int]
) -> None:
    with pytest.raises(ValueError, match=r"layers=.*0\.\.2"):
        HFBackbone(str(model_dirs["hubert"]), layers=layers)


def test_missing_local_dir(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="model=.*neither"):
        HFBackbone(str(tmp_path / "no_such_dir"))


def test_unknown_hub_id_mentions_offline_mode() -> None:
    with pytest.raises(
        ValueError, match="neither a local directory nor a reachable.*HF_HUB_OFFLINE"
    ):
        HFBackbone("saelight-tests/no-such-model")


def test_local_dir_without_config(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="config.json"):
        HFBackbone(str(tmp_path))


def test_mert_like_without_trust_remote_code(mert_like_dir: Path) -> None:
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        HFBackbone(str(mert_like_dir))


def test_classification_checkpoint_loads_its_encoder(tmp_path: Path) -> None:
    """The paper's AST is an AudioSet classifier: AutoModel keeps its encoder, drops the head."""
    config, extractor = BUILDERS["ast"][0]()
    classifier = ASTForAudioClassification(config)
    classifier.save_pretrained(tmp_path)
    extractor.save_pretrained(tmp_path)
    backbone = HFBackbone(str(tmp_path))
    assert backbone.model_class == "ASTModel"
    encoder = classifier.audio_spectrogram_transformer.state_dict()
    assert all(torch.equal(encoder[k], v) for k, v in backbone.net.state_dict().items())


def test_checkpoint_missing_weights_is_refused(
    model_dirs: dict[str, Path], tmp_path: Path, waves: list[np.ndarray]
) -> None:
    shutil.copytree(model_dirs["hubert"], tmp_path, dirs_exist_ok=True)
    weights = load_file(tmp_path / "model.safetensors")
    del weights["encoder.layers.0.attention.k_proj.weight"]
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    backbone = HFBackbone(str(tmp_path))  # the weights load on first use, so the check runs there
    with pytest.raises(ValueError, match="missing from the checkpoint"):
        backbone.extract(waves)
    assert not backbone.weights_loaded


def test_non_audio_model_is_refused(tmp_path: Path) -> None:
    config = BertConfig(
        vocab_size=16,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    BertModel(config).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="feature extractor"):
        HFBackbone(str(tmp_path))


def test_model_without_hidden_states(
    model_dirs: dict[str, Path], waves: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    backbone = HFBackbone(str(model_dirs["hubert"]))
    forward = backbone.net.forward

    def no_hidden_states(*args, **kwargs):
        out = forward(*args, **kwargs)
        out.hidden_states = None
        return out

    monkeypatch.setattr(backbone.net, "forward", no_hidden_states)
    with pytest.raises(ValueError, match="hidden_states"):
        backbone.extract(waves)


def test_bad_arguments_and_waves(model_dirs: dict[str, Path]) -> None:
    path = str(model_dirs["hubert"])
    with pytest.raises(ValueError, match="dtype"):
        HFBackbone(path, dtype="float16")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_batch_seconds"):
        HFBackbone(path, max_batch_seconds=0)
    backbone = HFBackbone(path)
    with pytest.raises(ValueError, match="waves is empty"):
        backbone.extract([])
    with pytest.raises(ValueError, match=r"waves\[0\].*1-D"):
        backbone.extract([np.zeros((2, 800), np.float32)])
