"""The page's media budget: handed out best latent first, a shared row paid once, the tail dropped;
activation curves computed by hand."""

import base64
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import soundfile as sf

from saelight.explorer.audio import ClipLoader, encode
from saelight.explorer.media import (
    THUMBNAIL_SHARE,
    _pairs,
    activation_curve,
    b64_size,
    cap_note,
    embed_media,
)
from saelight.explorer.spectrogram import thumbnail_png


def _clips(tmp_path: Path, n: int = 3) -> pd.DataFrame:
    """n one-second noise clips on disk, one clip-pooled row each (rows 10, 11, ...)."""
    rng = np.random.default_rng(0)
    for i in range(n):
        sf.write(tmp_path / f"c{i}.wav", 0.1 * rng.normal(size=16000), 16000)
    return pd.DataFrame(
        {
            "row": 10 + np.arange(n),
            "clip_id": [f"c{i}" for i in range(n)],
            "path": [str(tmp_path / f"c{i}.wav") for i in range(n)],
            "start_s": 0.0,
            "end_s": 1.0,
            "frame": -1,
        }
    )


def test_b64_size_is_what_base64_writes() -> None:
    for n in range(10):
        assert b64_size(n) - 24 == len(base64.b64encode(b"x" * n))


def test_budget_goes_to_the_best_latents_rows_first(tmp_path: Path) -> None:
    meta = _clips(tmp_path)
    # latent 0 tops rows 1 then 0, latent 1 tops row 0 (already paid) then row 2
    positions = np.array([[1, 0], [0, 2]])
    values = np.ones((2, 2))
    codes = sp.csc_matrix(np.ones((3, 2), np.float32))
    noise = max(len(encode(sf.read(tmp_path / f"c{i}.wav")[0])) for i in range(3))
    room = 2.2 * b64_size(noise) / (1 - THUMBNAIL_SHARE)  # two snippets' worth of audio
    kwargs = dict(meta=meta, codes=codes, peaks=np.ones(2), loader=ClipLoader(None))
    media = embed_media(np.array([0, 1]), positions, values, max_bytes=room, **kwargs)
    assert sorted(media.audio) == [10, 11] and media.top_rows == 3
    assert sorted(media.spectrogram) == [10, 11, 12]  # thumbnails have their own share
    assert media.window[12] == (0.0, 1.0, 1.0)
    flipped = embed_media(np.array([1, 0]), positions, values, max_bytes=room, **kwargs)
    assert sorted(flipped.audio) == [10, 11]  # each latent's best row before any second row
    unlimited = embed_media(np.array([0, 1]), positions, values, max_bytes=None, **kwargs)
    assert len(unlimited.audio) == 3 and unlimited.summary()["audio_rows"] == 3
    nothing = embed_media(np.array([0, 1]), positions, values, max_bytes=0, **kwargs)
    assert not nothing.audio and not nothing.spectrogram


def test_the_room_thumbnails_leave_goes_to_audio(tmp_path: Path) -> None:
    meta = _clips(tmp_path)
    waves = [sf.read(tmp_path / f"c{i}.wav", dtype="float32")[0] for i in range(3)]
    sizes = [b64_size(len(encode(w))) for w in waves]
    thumbs = sum(b64_size(len(thumbnail_png(w, 16000))) for w in waves)
    room = 2 * max(sizes) + thumbs + 100  # audio's own share holds one snippet, not two
    assert sizes[0] <= (1 - THUMBNAIL_SHARE) * room < sizes[0] + sizes[1]
    media = embed_media(
        np.array([0]),
        np.array([[0], [1], [2]]),
        np.ones((3, 1)),
        meta,
        sp.csc_matrix(np.ones((3, 1), np.float32)),
        np.ones(1),
        ClipLoader(None),
        max_bytes=room,
    )
    assert sorted(media.spectrogram) == [10, 11, 12] and sorted(media.audio) == [10, 11]


def test_unloadable_rows_are_counted(tmp_path: Path) -> None:
    meta = _clips(tmp_path, 2)
    meta.loc[1, "path"] = str(tmp_path / "gone.wav")
    media = embed_media(
        np.array([0]),
        np.array([[0], [1]]),
        np.ones((2, 1)),
        meta,
        sp.csc_matrix(np.ones((2, 1), np.float32)),
        np.ones(1),
        ClipLoader(None),
        max_bytes=None,
    )
    assert sorted(media.audio) == [10] and media.unavailable == 1


def test_activation_curve_by_hand() -> None:
    # one clip of 5 frames (stream positions 3..7, centres 0.1..0.5 s); latent 1 codes 0,2,4,0,1
    dense = np.zeros((8, 2), np.float32)
    dense[3:8, 1] = [0.0, 2.0, 4.0, 0.0, 1.0]
    frames, centres = np.arange(3, 8), np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    curve = activation_curve(sp.csc_matrix(dense), 1, frames, centres, (0.15, 0.55), peak=8.0)
    x = np.round(255 * (centres[1:] - 0.15) / 0.4)
    y = np.round(255 * np.array([2.0, 4.0, 0.0, 1.0]) / 8.0)
    assert list(curve) == np.stack([x, y], 1).ravel().astype(int).tolist()


def test_pairs_go_round_robin_by_rank() -> None:
    """Every latent's best row (latents in order) before any latent's second-best row."""
    positions = np.array([[5, 6, 7], [8, 9, 10], [11, 12, 13]])
    values = np.array([[3.0, 3.0, 3.0], [2.0, 0.0, 2.0], [1.0, 0.0, 1.0]])  # latent 1: one row
    order = np.array([2, 0, 1])
    assert list(_pairs(order, positions, values)) == [
        (2, 7), (0, 5), (1, 6), (2, 10), (0, 8), (2, 13), (0, 11)
    ]  # fmt: skip


def test_one_clip_for_every_latent_before_a_second_for_any(tmp_path: Path) -> None:
    meta = _clips(tmp_path, n=4)
    # latents 0 and 1 each top two rows of their own; room for two snippets
    positions, values = np.array([[0, 2], [1, 3]]), np.ones((2, 2))
    noise = max(len(encode(sf.read(tmp_path / f"c{i}.wav")[0])) for i in range(4))
    media = embed_media(
        np.array([0, 1]),
        positions,
        values,
        meta,
        sp.csc_matrix(np.ones((4, 2), np.float32)),
        np.ones(2),
        ClipLoader(None),
        max_bytes=2.2 * b64_size(noise) / (1 - THUMBNAIL_SHARE),
    )
    assert sorted(media.audio) == [10, 12]  # latent-by-latent would have given [10, 11]


def test_cap_note_says_what_was_left_out() -> None:
    s = {"top_rows": 365, "unavailable": 5, "audio_rows": 171, "spectrogram_rows": 360}
    assert cap_note(s, 20) == (
        "audio of 189 rows (of 360) left out to stay under 20 MB (--max_page_mb)"
    )
    s["spectrogram_rows"] = 300
    assert cap_note(s, 0.25).startswith("audio of 189 rows (of 360) and spectrograms of 60 rows")
    assert cap_note({**s, "audio_rows": 360, "spectrogram_rows": 360}, 20) == ""


def test_doctests() -> None:
    import doctest

    from saelight.explorer import media

    assert doctest.testmod(media).failed == 0
