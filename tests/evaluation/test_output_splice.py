"""Output heads under splicing, on tiny random models saved to a temp dir: a CTC model with a
tiny vocabulary, an AST classifier and a Whisper with a decoder. Reconstruction + error term
changes nothing (KL exactly 0, identical transcripts), an identity SAE recovers all of the CE
and mean-ablation none, and a lossy SAE lands in between."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import (
    ASTConfig,
    ASTFeatureExtractor,
    ASTForAudioClassification,
    Wav2Vec2Config,
    Wav2Vec2CTCTokenizer,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForCTC,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
)

from saelight.backbones.hf import HFBackbone
from saelight.evaluation.output_effects import single_latents
from saelight.evaluation.output_splice import normalise_text, output_fidelity, transcript_errors

sys.path.insert(0, str(Path(__file__).parents[1] / "backbones"))
from tiny_models import CONV, SMALL, SR, whisper_config  # noqa: E402

LETTERS = list("abcdefgh")


class Identity:
    """encode = decode = identity: a lossless 'SAE'."""

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z


class Lossy(Identity):
    """Keeps the top half of each row's coordinates by magnitude: a lossy 'SAE'."""

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        k = x.shape[1] // 2
        idx = x.abs().topk(k, dim=1).indices
        return torch.zeros_like(x).scatter(1, idx, x.gather(1, idx))


def save_ctc(folder: Path) -> Path:
    torch.manual_seed(0)
    vocab = {"<pad>": 0, "|": 1, "<unk>": 2, **{c: i + 3 for i, c in enumerate(LETTERS)}}
    (folder / "vocab.json").parent.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), word_delimiter_token="|")
    config = Wav2Vec2Config(
        **SMALL, **CONV, vocab_size=len(vocab), pad_token_id=0,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    )  # fmt: skip
    Wav2Vec2ForCTC(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=SR, do_normalize=True).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_ast(folder: Path) -> Path:
    torch.manual_seed(0)
    config = ASTConfig(
        **SMALL, patch_size=16, frequency_stride=10, time_stride=10, max_length=256, num_labels=7
    )
    ASTForAudioClassification(config).save_pretrained(folder)
    ASTFeatureExtractor(num_mel_bins=128, max_length=256).save_pretrained(folder)
    return folder


def save_whisper(folder: Path) -> Path:
    torch.manual_seed(0)
    WhisperForConditionalGeneration(whisper_config(100)).save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=80, chunk_length=2).save_pretrained(folder)
    save_whisper_tokenizer(folder)
    return folder


def save_whisper_tokenizer(folder: Path) -> None:
    """A 64-token byte-level BPE vocabulary for the tiny Whisper (pad 0, start 1, end 2 as
    `whisper_config`): letters, the space byte "Ġ" and letter pairs, no merges, so a greedy
    transcript is lower-case text that jiwer can score, as with a real checkpoint."""
    from transformers import WhisperTokenizer

    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = {"<|pad|>": 0, "<|startoftranscript|>": 1, "<|endoftext|>": 2}
    for token in [*letters, "Ġ", *(a + b for a in letters for b in letters)][: 64 - len(vocab)]:
        vocab[token] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    special = {"unk_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}
    special |= {"bos_token": "<|startoftranscript|>", "pad_token": "<|pad|>"}
    tokenizer = WhisperTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), **special)
    tokenizer.save_pretrained(folder)


SAVERS = {"ctc": save_ctc, "classifier": save_ast, "seq2seq": save_whisper}


def tone_waves(*tones: tuple[float, int]) -> list[np.ndarray]:
    """A noisy sine of (frequency Hz, samples) per tone, at SR (seeded)."""
    rng = np.random.default_rng(0)
    t = np.arange(max(n for _, n in tones)) / SR
    return [
        (0.3 * np.sin(2 * np.pi * f * t[:n]) + 0.05 * rng.standard_normal(n)).astype(np.float32)
        for f, n in tones
    ]


@pytest.fixture(scope="module")
def waves() -> list[np.ndarray]:
    return tone_waves((220, SR), (330, 12000), (440, 14000))


@pytest.mark.parametrize("kind", sorted(SAVERS))
def test_error_term_identity_and_mean_anchor_the_scale(
    kind: str, tmp_path: Path, waves: list[np.ndarray]
) -> None:
    backbone = HFBackbone(str(SAVERS[kind](tmp_path / kind)), layers=[1])
    head = backbone.output_head()
    assert head is not None and head.kind == kind
    waves = backbone.prepare_waves(waves)
    hidden, mask = backbone.extract(waves)
    mean = hidden[1][mask].mean(0)
    out = output_fidelity(
        backbone, head, {"identity": Identity(), "lossy": Lossy()}, 1, waves, mean
    )
    identity, lossy = out["saes"]["identity"], out["saes"]["lossy"]
    assert identity["error_term_kl"] == pytest.approx(0.0, abs=1e-9)
    assert lossy["error_term_kl"] == pytest.approx(0.0, abs=1e-9)
    assert identity["kl"] == pytest.approx(0.0, abs=1e-9)
    assert identity["ce"] == pytest.approx(out["clean"]["ce"], abs=1e-9)
    assert identity["ce_recovered"] == pytest.approx(1.0, abs=1e-6)
    assert identity["top1_agreement"] == 1.0
    assert out["mean"]["kl"] > 1e-6
    assert lossy["kl"] > 0
    if kind != "classifier":
        assert identity["wer"] in (0.0, None) and identity["cer"] in (0.0, None)
        assert [e["identity"] for e in out["examples"]] == [e["clean"] for e in out["examples"]]
        assert head.tokenizer is not None  # transcripts are text, as with a real checkpoint
        text = r"(?:[a-z ]|<unk>)*"  # letters and spaces (CTC may also predict <unk>)
        assert all(re.fullmatch(text, e["clean"]) for e in out["examples"])
    else:
        assert identity["top5_agreement"] == 1.0


def test_headless_checkpoint_has_no_head(tmp_path: Path) -> None:
    from transformers import HubertConfig, HubertModel

    HubertModel(HubertConfig(**SMALL, **CONV)).save_pretrained(tmp_path)
    Wav2Vec2FeatureExtractor(sampling_rate=SR).save_pretrained(tmp_path)
    assert HFBackbone(str(tmp_path)).output_head() is None


def test_transcript_errors_normalise_and_skip_empty_references() -> None:
    assert normalise_text("  Hello, World!  ") == "hello world"
    errors = transcript_errors(["Hello world", "", "a b"], ["hello there", "x", "a b"])
    assert errors["wer"] == pytest.approx(1 / 4)  # 1 substitution in 4 reference words
    assert errors["cer"] == pytest.approx(5 / 14)  # "world"->"there": 5 of 11 + 3 chars
    assert transcript_errors(["", " "], ["a", "b"]) == {"wer": None, "cer": None}


@pytest.mark.parametrize("kind", sorted(SAVERS))
def test_latent_ablations_in_delta_form_score_their_own_output_effect(
    kind: str, tmp_path: Path, waves: list[np.ndarray]
) -> None:
    """With the identity 'SAE' a latent is one coordinate of h: ablating none is the clean run
    (KL and ΔCE exactly 0), ablating every coordinate moves the output most, and the gap's
    estimate is ΔCE_top − ΔCE_random with an interval around it."""
    backbone = HFBackbone(str(SAVERS[kind](tmp_path / kind)), layers=[1])
    head = backbone.output_head()
    waves = backbone.prepare_waves(waves)
    d = backbone.hidden_size
    sets = {
        "identity": [
            {"label": "tone", "value": "all", "kind": "top", "latents": list(range(d))},
            {"label": "tone", "value": "all", "kind": "random", "latents": []},
            {"label": "tone", "value": "one", "kind": "top", "latents": [3, 5]},
            {"label": "tone", "value": "one", "kind": "random", "latents": [7, 5]},
        ]
    }
    out = output_fidelity(backbone, head, {"identity": Identity()}, 1, waves, sets=sets)
    row = out["saes"]["identity"]
    effects = row["latent_effects"]
    # round robin over the top sets: 0, 3, 1, 5, 2, 4, 6, ... up to EFFECT_LATENTS (16)
    assert single_latents(sets["identity"], 5) == [0, 3, 1, 5, 2]
    assert sorted(e["latent"] for e in effects) == list(range(16))
    moved = [e["delta_ce"] for e in effects]
    assert moved == sorted(moved, reverse=True)
    every, one = row["ablation"]
    assert (every["value"], one["value"]) == ("all", "one")
    assert every["random"]["kl"] == 0.0 and every["random"]["delta_ce"] == 0.0
    assert every["random"]["top1_drop"] == 0.0
    assert every["top"]["kl"] > 1e-6 and every["top"]["kl"] > one["top"]["kl"]
    for entry in (every, one):
        gap = entry["gap"]
        expected = entry["top"]["delta_ce"] - entry["random"]["delta_ce"]
        assert gap["estimate"] == pytest.approx(expected, abs=1e-9)
        assert gap["low"] <= gap["estimate"] <= gap["high"]
    if kind != "classifier":
        assert every["random"]["wer"] in (0.0, None) and every["random"]["cer"] in (0.0, None)
