"""Splicing on tiny untrained HF models: exactness, fidelity 1 / 0, planted-latent ablation."""

from __future__ import annotations

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from torch import Tensor, nn
from transformers import (
    AutoModel,
    HubertConfig,
    Wav2Vec2FeatureExtractor,
    WhisperConfig,
    WhisperFeatureExtractor,
)

from saelight.backbones import HFBackbone
from saelight.evaluation.ablation import matched_random
from saelight.evaluation.splice import attached, encoder_layers, run_chunk, splice_fidelity
from saelight.io.errors import SaelightError
from saelight.sae.relu import ReLUSAE

SR = 16000
SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
CONV = {
    "conv_dim": (16,) * 7,
    "conv_kernel": (10, 3, 3, 3, 3, 2, 2),
    "conv_stride": (5, 2, 2, 2, 2, 2, 2),
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def _save(path, config, extractor) -> str:  # noqa: ANN001
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(path)
    extractor.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def hubert(tmp_path_factory: pytest.TempPathFactory) -> HFBackbone:
    config = HubertConfig(
        **SMALL,
        **CONV,
        intermediate_size=64,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    extractor = Wav2Vec2FeatureExtractor(sampling_rate=SR, return_attention_mask=False)
    return HFBackbone(_save(tmp_path_factory.mktemp("hubert"), config, extractor))


@pytest.fixture(scope="module")
def whisper(tmp_path_factory: pytest.TempPathFactory) -> HFBackbone:
    config = WhisperConfig(
        vocab_size=64,
        num_mel_bins=80,
        d_model=32,
        encoder_layers=2,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_source_positions=100,
        max_target_positions=16,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    extractor = WhisperFeatureExtractor(feature_size=80, chunk_length=2)
    return HFBackbone(_save(tmp_path_factory.mktemp("whisper"), config, extractor))


def sines(n: int, seconds: float = 0.5, seed: int = 0) -> list[np.ndarray]:
    """n clips of a random-frequency sine plus noise (two lengths, so batches differ)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        t = np.arange(int(SR * seconds * (1 + (i % 2) * 0.3))) / SR
        f = rng.uniform(100, 2000)
        out.append((np.sin(2 * np.pi * f * t) + 0.1 * rng.standard_normal(len(t))).astype("f4"))
    return out


class Identity(nn.Module):
    """An "SAE" that returns its input."""

    def encode(self, x: Tensor) -> Tensor:
        return x

    def decode(self, z: Tensor) -> Tensor:
        return z


class Constant(Identity):
    """An "SAE" that returns a fixed vector."""

    def __init__(self, value: Tensor) -> None:
        super().__init__()
        self.value = value

    def decode(self, z: Tensor) -> Tensor:
        return self.value.expand_as(z).clone()


def random_relu_sae(d_in: int, d_sae: int = 16) -> ReLUSAE:
    torch.manual_seed(1)
    return ReLUSAE(d_in, d_sae).eval()


def run_all(backbone: HFBackbone, layer: int, waves: list[np.ndarray], replace) -> dict:  # noqa: ANN001
    """{l: rows} for every later layer, all clips in one pass per `_plan` chunk."""
    out: dict[int, list[Tensor]] = {}
    with attached(backbone, layer) as hook:
        for chunk in backbone.plan_batches([len(w) for w in waves]):
            rows, _ = run_chunk(backbone, hook, layer, [waves[i] for i in chunk], replace)
            for i, r in rows.items():
                out.setdefault(i, []).append(r)
    return {i: torch.cat(r) for i, r in out.items()}


@pytest.mark.parametrize("name", ["hubert", "whisper"])
@pytest.mark.parametrize("layer", [0, 1, 2])
def test_error_term_reproduces_every_later_layer_exactly(
    name: str, layer: int, request: pytest.FixtureRequest
) -> None:
    backbone = request.getfixturevalue(name)
    waves = sines(4)
    sae = random_relu_sae(backbone.hidden_size)
    from saelight.evaluation.splice import sae_replace

    clean = run_all(backbone, layer, waves, None)
    spliced = run_all(backbone, layer, waves, sae_replace(sae))
    recon = run_all(backbone, layer, waves, sae_replace(sae, error=False))
    for i in range(layer + 1, backbone.num_layers + 1):
        assert torch.equal(spliced[i], clean[i]), i
        assert not torch.equal(recon[i], clean[i]), i
    # The clean layers match plain extraction (same batching, masks, padding).
    hidden, mask = backbone.extract(waves)
    order = [j for chunk in backbone.plan_batches([len(w) for w in waves]) for j in chunk]
    for i in range(layer, backbone.num_layers + 1):
        if i in hidden:
            extracted = torch.cat([hidden[i][j][mask[j]] for j in order])
            torch.testing.assert_close(extracted, clean[i], rtol=0, atol=0)


def test_identity_sae_gives_fidelity_one_and_mean_gives_zero(hubert: HFBackbone) -> None:
    waves = sines(6)
    result = splice_fidelity(hubert, {"identity": Identity()}, 1, waves)
    row = result["saes"]["identity"]
    assert row["fidelity_recovered"] == 1.0
    assert row["d_sae"] == 0.0 and row["d_mean"] > 0
    assert row["error_term_max_abs"] == 0.0
    assert result["checks"]["hook_matches_layer_max_abs"] == 0.0
    assert row["per_layer"]["2"]["fvu"] == 0.0
    assert row["per_layer"]["2"]["cosine"] == pytest.approx(1.0)

    mean = run_all(hubert, 1, waves, None)[1].mean(0)
    result = splice_fidelity(hubert, {"mean": Constant(mean)}, 1, waves, mean=mean)
    assert result["saes"]["mean"]["fidelity_recovered"] == 0.0


def test_trained_like_sae_lies_between(hubert: HFBackbone) -> None:
    waves = sines(6)
    sae = random_relu_sae(hubert.hidden_size, 64)
    result = splice_fidelity(hubert, sae, 0, waves)
    row = result["saes"]["sae"]
    assert set(row["per_layer"]) == {"1", "2"}
    assert row["error_term_max_abs"] == 0.0
    assert np.isfinite(row["fidelity_recovered"])


# Planted labels: the "clean" model adds alpha·u at hidden_states[1] to every frame of a clip with
# A = yes and alpha·v to clips with B = yes. The audio is drawn identically for all four
# combinations, so u and v carry the only label information. The SAE is built by hand: latent 0
# detects A (z0 = ReLU(u·x − alpha/2), decoder 2u, so it decodes to ~alpha·u on planted frames),
# latent 1 detects B along v, latents 2.. are random directions orthogonal to u and v.
ALPHA = 12.0


def planted(d: int) -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g))
    return q[:, 0], q[:, 1], q[:, 2:10].T  # u, v, 8 random orthogonal directions


def planted_sae(d: int) -> ReLUSAE:
    u, v, w = planted(d)
    sae = ReLUSAE(d, 10)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([u[None], v[None], w]).T)
        sae.b_enc.copy_(torch.tensor([-ALPHA / 2, -ALPHA / 2] + [0.0] * 8))
        sae.W_dec.copy_(torch.cat([2 * u[None], 2 * v[None], w]))
        sae.b_dec.zero_()
    return sae.eval()


def test_ablating_a_planted_latent_drops_only_its_label(hubert: HFBackbone) -> None:
    n = 24
    waves = [w[:8000] for w in sines(n, seconds=1.0, seed=5)]  # equal lengths: one batch
    a = np.array(["yes", "no"] * (n // 2))
    b = np.array(["yes", "yes", "no", "no"] * (n // 4))
    u, v, _ = planted(hubert.hidden_size)
    plant = (torch.tensor(a == "yes")[:, None] * u + torch.tensor(b == "yes")[:, None] * v) * ALPHA

    def hook(module, args, output):  # noqa: ANN001, ANN202
        x = output[0] if isinstance(output, tuple) else output
        assert x.shape[0] == n, "the planting hook needs all clips in one batch"
        x = x + plant[:, None, :]
        return (x, *output[1:]) if isinstance(output, tuple) else x

    # On the output of encoder layer 0 (= hidden_states[1]), before HF's recorder sees it.
    handle = encoder_layers(hubert)[0].register_forward_hook(hook, prepend=True)
    try:
        result = splice_fidelity(
            hubert, planted_sae(hubert.hidden_size), 1, waves, {"A": a, "B": b}, k_ablate=1
        )
    finally:
        handle.remove()
    row = result["saes"]["sae"]
    assert result["checks"]["hook_matches_layer_max_abs"] == 0.0
    assert result["mean"]["probe"]["A"]["clean_acc"] == 1.0
    assert result["mean"]["probe"]["B"]["clean_acc"] == 1.0
    sets = {(s["label"], s["value"], s["kind"]): s for s in row["ablation"]}
    top_a, random_a = sets[("A", "yes", "top")], sets[("A", "yes", "random")]
    assert top_a["latents"] == [0] and sets[("B", "yes", "top")]["latents"] == [1]
    assert random_a["latents"] and random_a["latents"] != [0]
    assert top_a["target_value_drop"] > 0.9  # every A = yes frame now reads "no"
    assert top_a["target_drop"] > 0.4
    assert abs(top_a["others_drop"]["B"]) < 0.05
    assert abs(random_a["target_drop"]) < 0.05
    assert sets[("B", "yes", "top")]["target_drop"] > 0.4
    assert abs(sets[("B", "yes", "top")]["others_drop"]["A"]) < 0.05


def test_matched_random_picks_live_latents_of_similar_frequency() -> None:
    f = np.array([0.5, 0.0, 0.45, 0.01, 0.55, 0.2])
    picks = {matched_random([0], f, np.random.default_rng(s), pool=2)[0] for s in range(20)}
    assert picks == {2, 4}


def test_splice_refuses_a_non_hf_backbone_and_a_bad_layer(hubert: HFBackbone) -> None:
    with pytest.raises(SaelightError, match="Hugging Face"):
        encoder_layers(object())  # type: ignore[arg-type]
    with pytest.raises(SaelightError, match="outside"):
        splice_fidelity(hubert, Identity(), 7, sines(2))


def _run_dir(root, pooling: str) -> str:  # noqa: ANN001
    """A hand-made frame-level run: a saved config and two exports of layer 1 (k 4 and 16)."""
    from saelight.sae import TopKSAE

    config = {
        "trainer": {"default_root_dir": str(root)},
        "data": {
            "cache": {
                "directory": str(root / "cache"),
                "pooling": pooling,
                "source": {
                    "class_path": "saelight.audio.SyntheticSinging",
                    "init_args": {
                        "duration_s": 0.5,
                        "techniques": ["belt", "breathy"],
                        "vowels": ["a", "i"],
                        "n_singers": 4,
                    },
                },
                "backbone": {
                    "class_path": "saelight.backbones.UntrainedBackbone",
                    "init_args": {
                        "num_layers": 2,
                        "hidden_size": 32,
                        "save_dir": str(root / "models"),
                    },
                },
            }
        },
        "model": {
            "saes": [{"class_path": "saelight.sae.TopKSAE", "init_args": {"d_sae": 64, "k": 4}}]
        },
    }
    import yaml

    (root / "config.yaml").write_text(yaml.safe_dump(config))
    for k in (4, 16):
        torch.manual_seed(k)
        TopKSAE(32, 64, k=k).save_pretrained(
            root / "saes" / f"L01_topk_k{k}", layer=1, pooling=pooling, name=f"k{k}"
        )
    return str(root)


def test_splice_command_writes_json_and_figure(tmp_path, capsys) -> None:  # noqa: ANN001
    import json

    from saelight.commands.parser import command_parser
    from saelight.commands.splice import splice as splice_command

    run = _run_dir(tmp_path, "frame")
    parser = command_parser("splice", splice_command)
    args = parser.parse_args(["--run", run, "--max_clips", "8", "--k_ablate", "2"])
    splice_command(**{k: args[k] for k in ("run", "max_clips", "k_ablate", "split", "labels")})
    out = json.loads((tmp_path / "splice" / "splice.json").read_text())
    assert (tmp_path / "splice" / "splice.png").stat().st_size > 0
    (layer,) = out["layers"]
    assert layer["layer"] == 1 and set(layer["saes"]) == {"L01_topk_k4", "L01_topk_k16"}
    for row in layer["saes"].values():
        assert row["error_term_max_abs"] == 0.0
        assert set(row["per_layer"]) == {"2"}
        assert {"technique", "vowel"} <= set(row["probe"])
        assert {a["kind"] for a in row["ablation"]} == {"top", "random"}
    assert out["seconds_per_audio_hour"] > 0
    assert "fidelity" in capsys.readouterr().out


def test_splice_command_refuses_a_clip_pooled_run(tmp_path) -> None:  # noqa: ANN001
    from saelight.commands.splice import splice as splice_command

    run = _run_dir(tmp_path, "clip")
    with pytest.raises(SaelightError, match="clip-pooled run .* cannot be spliced"):
        splice_command(run)
    assert not (tmp_path / "models").exists()  # refused before any backbone was built
