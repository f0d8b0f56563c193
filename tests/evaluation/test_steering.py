"""Steering (`saelight.evaluation.steering`): the delta-form edit of each mode against a
hand-written reference, α = 0 reproducing the clean output bit for bit for every head family
and a headless encoder, a planted latent moving the output more than a frequency-matched random
one, and the latent choice (ids, label=value detectors)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor
from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

from saelight.backbones.hf import HFBackbone
from saelight.evaluation.splice import SpliceHook
from saelight.evaluation.steer_latents import detector_latents, parse_latents
from saelight.evaluation.steering import LatentEdit, Plan, edit_codes, steer_sweep
from saelight.io.errors import SaelightError
from saelight.sae import TopKSAE

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "backbones"))
from test_output_splice import save_ast, save_ctc, save_whisper, tone_waves  # noqa: E402
from tiny_models import CONV, SMALL, SR  # noqa: E402


class Linear:
    """encode = ReLU(x W_enc), decode = z W_dec + b_dec: a hand-checkable 'SAE'."""

    def __init__(self, d_in: int = 4, d_sae: int = 3) -> None:
        g = torch.Generator().manual_seed(1)
        self.W_enc = torch.randn(d_in, d_sae, generator=g)
        self.W_dec = torch.randn(d_sae, d_in, generator=g)
        self.b_dec = torch.randn(d_in, generator=g)
        self.d_sae = d_sae

    def encode(self, x: Tensor) -> Tensor:
        return torch.relu(x @ self.W_enc)

    def decode(self, z: Tensor) -> Tensor:
        return z @ self.W_dec + self.b_dec


def _rows() -> Tensor:
    return torch.randn(6, 4, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("mode", ["ablate", "clamp", "add"])
def test_each_mode_moves_the_latent_along_its_decoder_row(mode: str) -> None:
    sae, x, j, v = Linear(), _rows(), 1, torch.tensor([2.5])
    z = sae.encode(x)
    target = {"ablate": torch.zeros(6), "clamp": torch.full((6,), 2.5), "add": z[:, j] + 1}[mode]
    for alpha in (0.5, 1.0, 3.0):
        edited = LatentEdit(sae, [j], mode, alpha, v)(x)
        moved = alpha * (target - z[:, j])  # z'_j − z_j
        expected = x.double() + moved[:, None].double() * sae.W_dec[j].double()
        torch.testing.assert_close(edited.double(), expected, atol=1e-5, rtol=1e-5)
    untouched = edit_codes(z, [j], mode, 1.0, v)
    assert torch.equal(untouched[:, [0, 2]], z[:, [0, 2]])


@pytest.mark.parametrize("mode", ["ablate", "clamp", "add"])
def test_alpha_zero_returns_the_rows_bit_for_bit(mode: str) -> None:
    sae, x = Linear(), _rows()
    u = torch.nn.functional.normalize(torch.randn(4, dtype=torch.float64), dim=0)
    for direction in (None, u):
        edit = LatentEdit(sae, [0, 2], mode, 0.0, torch.tensor([3.0, -1.0]), direction)
        assert torch.equal(edit(x), x)
        assert edit.norm_sum == 0.0 and edit.rows == 6


def test_random_direction_has_the_latent_edits_norm_per_row() -> None:
    sae, x = Linear(), _rows()
    u = torch.nn.functional.normalize(torch.randn(4, dtype=torch.float64), dim=0)
    latent = LatentEdit(sae, [1], "add", 2.0, torch.zeros(1))
    control = LatentEdit(sae, [1], "add", 2.0, torch.zeros(1), direction=u)
    d_latent = latent(x).double() - x.double()
    d_control = control(x).double() - x.double()
    torch.testing.assert_close(d_control.norm(dim=1), d_latent.norm(dim=1), atol=1e-5, rtol=0)
    cos = torch.nn.functional.cosine_similarity(d_control, u[None].expand_as(d_control), dim=1)
    torch.testing.assert_close(cos, torch.ones(6, dtype=torch.float64), atol=1e-5, rtol=0)
    assert latent.norm_sum == pytest.approx(control.norm_sum)


def save_hubert(folder: Path) -> Path:
    torch.manual_seed(0)
    HubertModel(HubertConfig(**SMALL, **CONV)).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=SR).save_pretrained(folder)
    return folder


SAVERS = {"ctc": save_ctc, "classifier": save_ast, "seq2seq": save_whisper, "hidden": save_hubert}


@pytest.fixture(scope="module")
def waves() -> list[np.ndarray]:
    return tone_waves((220, SR), (330, 12000))


def random_sae(d_in: int) -> TopKSAE:
    torch.manual_seed(0)
    return TopKSAE(d_in=d_in, d_sae=64, k=8).eval()


@pytest.mark.parametrize("kind", sorted(SAVERS))
def test_alpha_zero_is_the_clean_output_for_every_head(
    kind: str, tmp_path: Path, waves: list[np.ndarray]
) -> None:
    backbone = HFBackbone(str(SAVERS[kind](tmp_path / kind)), layers=[1])
    head = backbone.output_head()
    assert (head.kind if head is not None else "hidden") == kind
    sae = random_sae(backbone.hidden_size)
    plan = Plan(latents=[0, 1, 2, 3], mode="add", alphas=[0.0, 1.0], value=None, seed=0)
    out = steer_sweep(backbone, head, sae, 1, waves, plan, max_new_tokens=4)
    assert out["output"] == kind and len(out["sweep"]) == 2 * 3
    score = "hidden_change" if kind == "hidden" else "kl"
    for row in out["sweep"]:
        if row["alpha"] == 0.0:
            assert row["output_max_abs_diff"] == 0.0 and row[score] == 0.0
            assert row["edit_norm"] == 0.0
            for clip, clean in zip(row["clips"], out["clean"], strict=True):
                assert {k: clip[k] for k in clean} == clean  # same transcript / top-5
        elif row["variant"] != "random_latents":
            assert row["edit_norm"] > 0 and row["output_max_abs_diff"] > 0
    if kind in ("ctc", "seq2seq"):
        assert all(r["cer"] in (0.0, None) for r in out["sweep"] if r["alpha"] == 0.0)


def test_alpha_zero_leaves_every_logit_bit_identical(
    tmp_path: Path, waves: list[np.ndarray]
) -> None:
    backbone = HFBackbone(str(save_ctc(tmp_path / "ctc")), layers=[1])
    head = backbone.output_head()
    assert head is not None
    inputs = backbone.family.features(waves[:1])
    with torch.inference_mode():
        clean = head.model(**inputs).logits
    hook = SpliceHook(backbone)
    hook.lengths = [len(waves[0])]
    hook.replace = LatentEdit(random_sae(backbone.hidden_size), [0, 5], "add", 0.0, torch.zeros(2))
    handle = head.layers[1].register_forward_pre_hook(hook, with_kwargs=True, prepend=True)
    try:
        with torch.inference_mode():
            steered = head.model(**inputs).logits
    finally:
        handle.remove()
    assert hook.seen is not None and len(hook.seen) > 0
    assert torch.equal(steered, clean)


def planted_sae(x: Tensor, d_sae: int = 16) -> TopKSAE:
    """Latent 0 reads and writes the rows' dominant direction (their top singular vector);
    the others read and write random unit directions."""
    _, _, vh = torch.linalg.svd(x.double(), full_matrices=False)
    u = vh[0] * torch.sign((x.double() @ vh[0]).mean())
    g = torch.Generator().manual_seed(3)
    dirs = torch.nn.functional.normalize(torch.randn(d_sae, x.shape[1], generator=g), dim=1)
    dirs[0] = u.float()
    sae = TopKSAE(d_in=x.shape[1], d_sae=d_sae, k=d_sae, decoder_bias=False)
    with torch.no_grad():
        sae.W_enc.copy_(dirs.T)
        sae.b_enc.zero_()
        sae.W_dec.copy_(dirs)
    return sae.eval()


def test_ablating_a_planted_latent_moves_the_output_more_than_a_matched_random_one(
    tmp_path: Path, waves: list[np.ndarray]
) -> None:
    backbone = HFBackbone(str(save_ctc(tmp_path / "ctc")), layers=[1])
    head = backbone.output_head()
    hidden, mask = backbone.extract(backbone.prepare_waves(waves))
    sae = planted_sae(hidden[1][mask])
    plan = Plan(latents=[0], mode="ablate", alphas=[1.0], value=None, seed=0)
    out = steer_sweep(backbone, head, sae, 1, waves, plan)
    rows = {r["variant"]: r for r in out["sweep"]}
    (control,) = out["control_latents"]
    assert control != 0 and out["frequency"][str(control)] > 0
    assert rows["latents"]["kl"] > 10 * rows["random_latents"]["kl"] > 0
    assert rows["latents"]["top1_agreement"] <= rows["random_latents"]["top1_agreement"]


def test_parse_latents_takes_ids_or_label_value() -> None:
    assert parse_latents("12") == [12]
    assert parse_latents("12, 40") == [12, 40]
    assert parse_latents("vowel=a") == ("vowel", "a")
    for bad in ("", "x", "-3", "=a", "vowel="):
        with pytest.raises(SaelightError, match="latents="):
            parse_latents(bad)


def test_detectors_of_a_value_are_the_latent_that_fires_on_it() -> None:
    rng = np.random.default_rng(0)
    values = np.array(["a", "b"] * 30)
    x = torch.tensor(rng.uniform(0.1, 1.0, (60, 5)), dtype=torch.float32)
    x[:, 2] = torch.tensor(values == "a", dtype=torch.float32) * 2.0  # latent 2 fires on "a"
    x[:, 4] = torch.tensor(rng.uniform(0, 1, 60) < 0.5, dtype=torch.float32)  # about as often

    class Identity:
        d_sae = 5

        def encode(self, rows: Tensor) -> Tensor:
            return rows

    top, control = detector_latents(Identity(), x, values, "a", 1, seed=0)
    assert top == [2] and len(control) == 1 and control != top
    with pytest.raises(SaelightError, match="'c' is not among"):
        detector_latents(Identity(), x, values, "c", 1, seed=0)
