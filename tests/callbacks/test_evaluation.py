"""`SAEEvaluation(protocol=None)` follows the protocol the run's cache was built with: under
"paper" the probes read the cache's `test_head` rows and the Lasso R² is in-sample; an explicit
protocol overrides it. On a real cache (ActivationCache + ActivationDataModule) of clips whose
label is audible in their first 0.25 s only, read by a frame-statistics backbone."""

from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from saelight.audio.base import SPLITS, AudioSource, Clip
from saelight.cache import TEST_HEAD, ActivationCache
from saelight.callbacks import SAEEvaluation
from saelight.data.datamodule import ActivationDataModule
from saelight.evaluation.layer import EvalOptions, SplitData, evaluate_layer
from saelight.evaluation.results import read_results
from saelight.metrics.disentanglement import lasso_completeness
from saelight.module import SAEModule
from saelight.sae import TopKSAE

SR = 16000


class LoudStart(AudioSource):
    """2 s clips: the first 0.25 s loud or soft (label `start`), then 1.75 s of noise whose
    level (factor `level`) is unrelated to the label. Splits: 20 train, 8 val, 12 test."""

    def clips(self) -> list[Clip]:
        splits = [SPLITS[0]] * 20 + [SPLITS[1]] * 8 + [SPLITS[2]] * 12
        return [
            Clip(
                f"c{i:02d}", s, {"start": "loud" if i % 2 else "soft"}, {"level": 0.2 + i % 5 / 10}
            )
            for i, s in enumerate(splits)
        ]

    def load(self, clip: Clip, sample_rate: int) -> np.ndarray:
        rng = np.random.default_rng(int(clip.clip_id[1:]))
        start = (0.9 if clip.labels["start"] == "loud" else 0.1) * np.sin(np.arange(SR // 4) / 3)
        rest = clip.factors["level"] * rng.uniform(-1, 1, 2 * SR - SR // 4)
        return np.concatenate([start, rest]).astype(np.float32)

    def fingerprint(self) -> dict[str, Any]:
        return {"class": "LoudStart"}


class FrameStats:
    """Mean |x|, std and max |x| of each 160-sample frame (layer 0); any lengths in one batch."""

    sample_rate, hidden_size, layers, min_samples, frame_rate_hz = SR, 3, [0], 160, 100.0

    def identity(self) -> dict[str, Any]:
        return {"model": "frame-stats"}

    def extract(self, waves: list[np.ndarray]) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
        frames = [len(w) // 160 for w in waves]
        h = torch.zeros(len(waves), max(frames), 3)
        mask = torch.zeros(len(waves), max(frames), dtype=torch.bool)
        for b, (w, t) in enumerate(zip(waves, frames, strict=True)):
            x = torch.from_numpy(w[: t * 160].reshape(t, 160))
            h[b, :t] = torch.stack([x.abs().mean(1), x.std(1), x.abs().max(1).values], 1)
            mask[b, :t] = True
        return {0: h}, mask


@pytest.fixture(scope="module")
def paper_data(tmp_path_factory: pytest.TempPathFactory) -> ActivationDataModule:
    directory = str(tmp_path_factory.mktemp("cache"))
    cache = ActivationCache(
        directory, LoudStart(), FrameStats(), crop_seconds=0.25, protocol="paper"
    )  # type: ignore[arg-type]
    return ActivationDataModule(cache, verify_checksums=False)


def evaluate(dm: ActivationDataModule, root: Path, **kwargs: Any) -> dict[str, Any]:
    """The dense row of `SAEEvaluation(**kwargs).evaluate` on layer 0 (one TopK SAE beside)."""
    module = SAEModule([partial(TopKSAE, d_sae=8)], sparsities=[0.75], d_in=3, layers=[0])
    trainer = SimpleNamespace(
        datamodule=dm, lightning_module=module, is_global_zero=True, loggers=[],
        strategy=SimpleNamespace(barrier=lambda: None), current_epoch=0, global_step=0,
        default_root_dir=str(root),
    )  # fmt: skip
    callback = SAEEvaluation(probe="logistic", k_sparse=0, report=False, **kwargs)
    rows = callback.evaluate(trainer, module, best=False)  # type: ignore[arg-type]
    assert read_results(root)["run"]["protocol"] == (kwargs.get("protocol") or "paper")
    assert [r["kind"] for r in rows] == ["dense", "sae"]
    return rows[0]


def test_protocol_none_follows_the_cache(paper_data: ActivationDataModule, tmp_path: Path) -> None:
    reader = paper_data.open_reader()
    rows = {s: reader.split_rows(s) for s in (*SPLITS, TEST_HEAD)}
    assert len(rows["test"]) == len(rows[TEST_HEAD]) == 12
    followed = evaluate(paper_data, tmp_path / "none")
    ours = evaluate(paper_data, tmp_path / "ours", protocol="saelight")
    # Probes: the head rows (where the label is) under the cache's protocol, whole files else.
    assert followed["probe_start_acc"] == 1.0 and ours["probe_start_acc"] < 0.8
    splits = {
        s: SplitData(reader.read(r)[:, 0], reader.metadata.iloc[r].reset_index(drop=True))
        for s, r in rows.items()
    }
    opts = EvalOptions(probe="logistic", k_sparse=0, disentanglement=False)
    on_head = evaluate_layer(0, splits, {}, opts)[0]
    assert followed["probe_start_clip_correct"] == on_head["probe_start_clip_correct"]
    # The Lasso R² on the whole test files: in-sample (paper) vs held out (saelight).
    test = splits["test"]
    factors = {"level": test.meta["factor_level"].to_numpy(np.float64)}
    groups = test.meta["clip_id"].to_numpy()
    r2 = {
        held_out: lasso_completeness(test.x, factors, seed=42, groups=groups, held_out=held_out)
        for held_out in (False, True)
    }
    assert followed["r2_mean"] == pytest.approx(r2[False].summary["r2_mean"])
    assert ours["r2_mean"] == pytest.approx(r2[True].summary["r2_mean"])
    assert followed["r2_mean"] != pytest.approx(ours["r2_mean"])
