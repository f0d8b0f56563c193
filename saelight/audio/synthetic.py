"""SyntheticSinging: the embedded default dataset, a source-filter singing synthesiser.

Needs no download and is a pure function of its arguments: the clip of singer s, technique t,
vowel v and repeat r (t and v indexed in the full technique and vowel lists) is drawn from
`numpy.random.default_rng([seed, 0, s, t, v, r])` (parameters) and `[seed, 2, s, t, v, r]` (noise),
singer s from `[seed, 1, s]`, so choosing a subset of techniques or vowels leaves the other clips
unchanged. Each clip is one sustained phonation (rendered by `saelight.audio.voice`):

    Rosenberg glottal flow at f0(t) -> d/dt (lip radiation) -> + aspiration noise
    -> one-pole spectral tilt -> F1..F4 two-pole resonators (vowel x singer scale) -> envelope

Singers alternate female/male (f1, m1, f2, m2, ...). Each has a pitch range (female low note
G3-C4, male G2-C3, 15-19 semitones wide), a formant scale (female 1.10-1.20, male 0.92-1.02), a
glottal shape (open quotient 0.55-0.68, speed quotient 2-3.5), a tilt, jitter, shimmer and noise
level. Vowel formants are Peterson & Barney (1952) adult-male means, times the singer scale, +-3 %
per clip. Splits go by singer: the last `n_test_singers` are test, the `n_val_singers` before them
val, the rest train, so no singer straddles two splits.

Technique rules (changes from a singer's defaults; every clip also gets a slow f0 drift of
0.05-0.15 semitone at 0.2-0.8 Hz, a 30 ms fade in/out and per-cycle jitter/shimmer):

=========  ==============================================================================
technique  rule
=========  ==============================================================================
belt       note in the top half of the range; open quotient -0.2 (long closed phase);
           tilt pole 0-0.1 (brighter, ~flat tilt); half the noise; +4 dB
breathy    open quotient +0.2; tilt pole 0.85-0.9 (weak upper harmonics); aspiration noise
           ratio 0.45-0.65; formant bandwidths x1.6; -3 dB
inhaled    glottal flow time-reversed (abrupt opening, slow closing); open quotient 0.75;
           noise ratio 0.5-0.7; jitter 2-4 %; f0 wander 0.3-0.6 st at 1-2 Hz; -8 dB
lip_trill  sinusoidal amplitude modulation at 20-30 Hz, depth 0.7-0.95
spoken     note in the bottom third; f0 glides through 5-7 knots (declination +3 to -3 st,
           +-1.5 st each); voiced syllables of 0.12-0.3 s separated by 0.04-0.12 s silences;
           noise ratio 0.1-0.2; jitter x2; -2 dB
straight   steady f0: drift only 0.02-0.06 st, no modulation
trill      f0 alternates (square-ish, tanh-shaped) between the note and 1-2 st above it at
           5-7 Hz
trillo     glottal interruptions: amplitude gate at 6-8 Hz, depth 0.85-1, ~60 % duty cycle
vibrato    sinusoidal f0 modulation at 5-6.5 Hz, depth 0.5-1.0 st (peak deviation)
vocal_fry  f0 40-65 Hz (male) / 55-85 Hz (female); jitter 8-15 %; shimmer 20-35 %; every
           other pulse attenuated by 30-60 % (irregular pulses); open quotient 0.25-0.35; -4 dB
=========  ==============================================================================

Labels: technique, vowel, singer, sex. Factors (ground truth for disentanglement): f0_mean_hz and
f0_std_semitones (of the smooth contour over voiced time, without jitter), vibrato_rate_hz,
vibrato_depth_semitones, trill_rate_hz, trill_interval_semitones, am_rate_hz, am_depth,
noise_ratio (RMS share of aspiration noise in the source), spectral_tilt_db (gain of the tilt
filter at 3 kHz minus at 300 Hz), open_quotient, jitter, shimmer, F1_hz..F4_hz, loudness_db
(RMS dBFS) and voiced_fraction. A modulation that a technique does not use is 0.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from saelight.audio.base import SPLITS, VOCALSET_TECHNIQUES, AudioSource, BadSourceError, Clip
from saelight.audio.decode import resample
from saelight.audio.voice import FADE_S, VoiceParams, semitones, synthesise, tilt_db, voicing
from saelight.io.defaults import DATA_SEED

VOWEL_FORMANTS: dict[str, tuple[float, float, float, float]] = {
    "a": (730.0, 1090.0, 2440.0, 3400.0),
    "e": (530.0, 1840.0, 2480.0, 3500.0),
    "i": (270.0, 2290.0, 3010.0, 3700.0),
    "o": (570.0, 840.0, 2410.0, 3400.0),
    "u": (300.0, 870.0, 2240.0, 3300.0),
}
"""F1-F4 in Hz, Peterson & Barney (1952) adult-male means (F4 approximate)."""
VOWELS: tuple[str, ...] = tuple(VOWEL_FORMANTS)
BANDWIDTHS = (80.0, 90.0, 120.0, 180.0)


@dataclass(frozen=True)
class _Singer:
    name: str
    sex: str
    low_midi: float
    span: float
    formant_scale: float
    open_quotient: float
    speed_quotient: float
    tilt_pole: float
    jitter: float
    shimmer: float
    noise: float


def _draw_singer(seed: int, s: int) -> _Singer:
    rng = np.random.default_rng([seed, 1, s])
    female = s % 2 == 0
    u = rng.uniform(size=9)
    return _Singer(
        name=f"{'f' if female else 'm'}{s // 2 + 1}",
        sex="female" if female else "male",
        low_midi=(55.0 if female else 43.0) + 5.0 * u[0],
        span=15.0 + 4.0 * u[1],
        formant_scale=(1.10 if female else 0.92) + 0.10 * u[2],
        open_quotient=0.55 + 0.13 * u[3],
        speed_quotient=2.0 + 1.5 * u[4],
        tilt_pole=0.35 + 0.25 * u[5],
        jitter=0.002 + 0.006 * u[6],
        shimmer=0.02 + 0.04 * u[7],
        noise=0.03 + 0.05 * u[8],
    )


def _draw_params(
    singer: _Singer, technique: str, vowel: str, rng: np.random.Generator, duration_s: float
) -> VoiceParams:
    """The technique rules of the module docstring, applied to one singer."""
    lo, hi = {"belt": (0.5, 1.0), "spoken": (0.0, 0.3)}.get(technique, (0.15, 0.85))
    midi = singer.low_midi + singer.span * rng.uniform(lo, hi)
    scale = singer.formant_scale * rng.uniform(0.97, 1.03, size=4)
    p = VoiceParams(
        f0_hz=float(440.0 * 2.0 ** ((midi - 69.0) / 12.0)),
        drift=(rng.uniform(0.05, 0.15), rng.uniform(0.2, 0.8), rng.uniform(0, 2 * np.pi)),
        open_quotient=singer.open_quotient,
        speed_quotient=singer.speed_quotient,
        tilt_pole=singer.tilt_pole,
        noise_ratio=singer.noise,
        jitter=singer.jitter,
        shimmer=singer.shimmer,
        formants=tuple(float(f) for f in np.array(VOWEL_FORMANTS[vowel]) * scale),
        bandwidths=BANDWIDTHS,
        level_db=-24.0 + rng.uniform(-2.0, 2.0),
    )
    phase = rng.uniform(0, 2 * np.pi)
    change: dict[str, Any] = {}
    if technique == "belt":
        change = dict(open_quotient=p.open_quotient - 0.2, tilt_pole=rng.uniform(0.0, 0.1))
        change.update(noise_ratio=p.noise_ratio / 2, level_db=p.level_db + 4.0)
    elif technique == "breathy":
        change = dict(open_quotient=p.open_quotient + 0.2, tilt_pole=rng.uniform(0.85, 0.9))
        change.update(noise_ratio=rng.uniform(0.45, 0.65), level_db=p.level_db - 3.0)
        change.update(bandwidths=tuple(b * 1.6 for b in BANDWIDTHS))
    elif technique == "inhaled":
        change = dict(reversed_flow=True, open_quotient=0.75, noise_ratio=rng.uniform(0.5, 0.7))
        change.update(jitter=rng.uniform(0.02, 0.04), level_db=p.level_db - 8.0)
        change.update(drift=(rng.uniform(0.3, 0.6), rng.uniform(1.0, 2.0), phase))
    elif technique == "lip_trill":
        change = dict(am=(rng.uniform(20.0, 30.0), rng.uniform(0.7, 0.95), phase))
    elif technique == "spoken":
        n_knots = int(rng.integers(5, 8))
        knots_t = np.linspace(0.0, duration_s, n_knots)
        knots_st = np.linspace(3.0, -3.0, n_knots) + rng.uniform(-1.5, 1.5, n_knots)
        change = dict(glide=(tuple(knots_t.tolist()), tuple(knots_st.tolist())))
        change.update(segments=_syllables(rng, duration_s), noise_ratio=rng.uniform(0.1, 0.2))
        change.update(jitter=2 * p.jitter, level_db=p.level_db - 2.0)
    elif technique == "straight":
        change = dict(drift=(rng.uniform(0.02, 0.06), p.drift[1], p.drift[2]))
    elif technique == "trill":
        change = dict(trill=(rng.uniform(5.0, 7.0), rng.uniform(1.0, 2.0), phase))
    elif technique == "trillo":
        change = dict(am=(rng.uniform(6.0, 8.0), rng.uniform(0.85, 1.0), phase), am_gate=True)
    elif technique == "vibrato":
        change = dict(vibrato=(rng.uniform(5.0, 6.5), rng.uniform(0.5, 1.0), phase))
    elif technique == "vocal_fry":
        f0 = rng.uniform(55.0, 85.0) if singer.sex == "female" else rng.uniform(40.0, 65.0)
        change = dict(f0_hz=f0, jitter=rng.uniform(0.08, 0.15), shimmer=rng.uniform(0.2, 0.35))
        change.update(alternation=rng.uniform(0.3, 0.6), open_quotient=rng.uniform(0.25, 0.35))
        change.update(level_db=p.level_db - 4.0)
    return dataclasses.replace(p, **change)


def _syllables(rng: np.random.Generator, duration_s: float) -> tuple[tuple[float, float], ...]:
    segments, t = [], rng.uniform(0.0, 0.08)
    while t < duration_s - 0.1:
        end = min(t + rng.uniform(0.12, 0.3), duration_s)
        segments.append((float(t), float(end)))
        t = end + rng.uniform(0.04, 0.12)
    return tuple(segments)


def _factors(p: VoiceParams, duration_s: float) -> dict[str, float]:
    t = np.arange(0.0, duration_s, 1.0 / 400.0)
    semis = semitones(p, t)
    voiced = voicing(p, t, duration_s) > 0.5
    f0 = p.f0_hz * 2.0 ** (semis[voiced] / 12.0)
    log_f0 = 12 * np.log2(f0)
    factors = {
        "f0_mean_hz": float(f0.mean()),
        "f0_std_semitones": float(log_f0.std()),
        "vibrato_rate_hz": p.vibrato[0],
        "vibrato_depth_semitones": p.vibrato[1],
        "trill_rate_hz": p.trill[0],
        "trill_interval_semitones": p.trill[1],
        "am_rate_hz": p.am[0],
        "am_depth": p.am[1],
        "noise_ratio": p.noise_ratio,
        "spectral_tilt_db": tilt_db(p.tilt_pole),
        "open_quotient": p.open_quotient,
        "jitter": p.jitter,
        "shimmer": p.shimmer,
        **{f"F{i + 1}_hz": f for i, f in enumerate(p.formants)},
        "loudness_db": p.level_db,
        "voiced_fraction": float(voiced.mean()),
    }
    return {name: float(value) for name, value in factors.items()}


class SyntheticSinging(AudioSource):
    """Generated singing with known technique, vowel, singer and continuous factors.

    Every (singer, technique, vowel) combination gets `clips_per_combo` clips; the default
    8 x 10 x 5 x 2 = 800 clips of 2 s (train 500, val 100, test 200). See the module docstring for
    the synthesis model and the rule behind each technique.
    """

    def __init__(
        self,
        clips_per_combo: int = 2,
        duration_s: float = 2.0,
        sample_rate: int = 16000,
        techniques: tuple[str, ...] = VOCALSET_TECHNIQUES,
        vowels: tuple[str, ...] = ("a", "e", "i", "o", "u"),
        n_singers: int = 8,
        n_val_singers: int = 1,
        n_test_singers: int = 2,
        seed: int = DATA_SEED,
    ) -> None:
        """Build the clip list (parameters only; audio is rendered in `load`).

        Args:
            clips_per_combo: clips per (singer, technique, vowel).
            duration_s: length of every clip in seconds.
            sample_rate: rate the clips are synthesised at (Hz); `load` resamples from it.
            techniques: subset of the 10 VocalSet techniques (default: all, in the paper's order).
            vowels: subset of a, e, i, o, u.
            n_singers: singers, alternating female/male (f1, m1, f2, m2, ...).
            n_val_singers: singers (taken before the test ones) whose clips form val.
            n_test_singers: last singers, whose clips form test.
            seed: seed of every random draw.
        """
        self.techniques, self.vowels = list(techniques), list(vowels)
        for name, chosen, allowed in (
            ("techniques", self.techniques, VOCALSET_TECHNIQUES),
            ("vowels", self.vowels, VOWELS),
        ):
            unknown = [x for x in chosen if x not in allowed]
            if unknown or not chosen:
                raise BadSourceError(
                    f"{name}: got {chosen}; expected a non-empty subset of {allowed}"
                )
        if clips_per_combo < 1 or duration_s <= 2 * FADE_S or sample_rate < 8000:
            raise BadSourceError(
                "expected clips_per_combo >= 1, duration_s > 0.06 and sample_rate >= 8000; got "
                f"{clips_per_combo}, {duration_s}, {sample_rate}"
            )
        if min(n_val_singers, n_test_singers) < 0 or n_val_singers + n_test_singers >= n_singers:
            raise BadSourceError(
                f"n_val_singers + n_test_singers must be < n_singers, got {n_val_singers} + "
                f"{n_test_singers} with n_singers={n_singers}"
            )
        self.clips_per_combo = clips_per_combo
        self.duration_s = duration_s
        self.sample_rate = sample_rate
        self.n_singers = n_singers
        self.n_val_singers = n_val_singers
        self.n_test_singers = n_test_singers
        self.seed = seed
        self._params: list[VoiceParams] = []
        self._keys: list[tuple[int, ...]] = []
        self._clips: list[Clip] = []
        self._index: dict[str, int] = {}
        self._build()
        self.validate()

    def _build(self) -> None:
        n_train = self.n_singers - self.n_val_singers - self.n_test_singers
        splits = [SPLITS[0]] * n_train + [SPLITS[1]] * self.n_val_singers
        splits += [SPLITS[2]] * self.n_test_singers
        combos = [(t, v) for t in self.techniques for v in self.vowels]
        for s in range(self.n_singers):
            singer = _draw_singer(self.seed, s)
            for (technique, vowel), r in itertools.product(combos, range(self.clips_per_combo)):
                key = (s, VOCALSET_TECHNIQUES.index(technique), VOWELS.index(vowel), r)
                rng = np.random.default_rng([self.seed, 0, *key])
                p = _draw_params(singer, technique, vowel, rng, self.duration_s)
                labels = dict(technique=technique, vowel=vowel, singer=singer.name, sex=singer.sex)
                clip_id = f"syn_{len(self._clips):05d}"
                self._index[clip_id] = len(self._clips)
                self._clips.append(Clip(clip_id, splits[s], labels, _factors(p, self.duration_s)))
                self._params.append(p)
                self._keys.append(key)

    def expected_splits(self) -> tuple[str, ...]:
        """Train, plus val and test unless their singer count is 0."""
        counts = {"train": 1, "val": self.n_val_singers, "test": self.n_test_singers}
        return tuple(split for split in SPLITS if counts[split] > 0)

    def split_hint(self, split: str) -> str:
        """The singer counts alone decide the splits."""
        return "check n_singers, n_val_singers and n_test_singers"

    def clips(self) -> list[Clip]:
        """All clips: singer-major, then technique, vowel and repeat (ids syn_00000, ...)."""
        return list(self._clips)

    def load(self, clip: Clip, sample_rate: int) -> np.ndarray:
        """Synthesise `clip` (bit-identical on every call) and resample it to `sample_rate`."""
        i = self._index.get(clip.clip_id)
        if i is None:
            raise ValueError(f"unknown clip_id {clip.clip_id!r}; expected one of clips()")
        rng = np.random.default_rng([self.seed, 2, *self._keys[i]])
        wave = synthesise(self._params[i], self.duration_s, self.sample_rate, rng)
        return resample(wave, self.sample_rate, sample_rate)

    def native_rate(self, clip: Clip) -> int | None:
        """`sample_rate`, the rate every clip is synthesised at."""
        return self.sample_rate

    def fingerprint(self) -> dict[str, Any]:
        """Class name and every constructor argument."""
        return {
            "class": type(self).__name__,
            "clips_per_combo": self.clips_per_combo,
            "duration_s": self.duration_s,
            "sample_rate": self.sample_rate,
            "techniques": self.techniques,
            "vowels": self.vowels,
            "n_singers": self.n_singers,
            "n_val_singers": self.n_val_singers,
            "n_test_singers": self.n_test_singers,
            "seed": self.seed,
        }
