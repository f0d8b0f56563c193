"""`ActivationCache`: what to extract (source × backbone × pooling) and the resumable extraction."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from saelight.audio.base import AudioSource, BadAudioError, Clip
from saelight.audio.decode import crop_or_pad, validate_waveform
from saelight.backbones.base import Backbone
from saelight.backbones.pooling import mean_pool
from saelight.cache.format import (
    FORMAT_VERSION,
    CacheNotFoundError,
    check_compatible,
    new_header,
    part_name,
    read_manifest,
    write_manifest,
)
from saelight.cache.lock import CacheLock, process_rank
from saelight.cache.options import check_cache_options
from saelight.cache.parts import covered, extract_then_merge, merge, read_parts, todo
from saelight.cache.reader import CacheReader
from saelight.cache.rows import EGEMAPS_RATE, load_waves, row_metadata, segment_egemaps
from saelight.cache.segments import Segment, plan_segments
from saelight.cache.writer import ShardWriter
from saelight.io.defaults import DATA_SEED
from saelight.io.progress import progress as progress_bar

log = logging.getLogger(__name__)

Item = tuple[int, Clip, Segment, np.ndarray, dict[str, float]]
"""A batch entry: (clip index, clip, segment, its wave, its extra factor columns)."""


class ActivationCache:
    """An activation cache directory and the recipe that fills it.

    `build()` is idempotent: it returns at once for a complete cache, resumes an interrupted one and
    refuses one made with a different recipe (naming the field that differs).

    Args:
        directory: where shards and the manifest live.
        source: the labelled audio (synthetic singing, VocalSet, HF dataset, folder/CSV).
        backbone: the frozen encoder whose `hidden_states[layers]` are cached.
        pooling: "clip" = one mean-pooled row per crop; "frame" = one row per frame.
        crop_seconds: crop length for train/val rows; None keeps whole files everywhere.
        crops_per_file: random train crops per file (stand-ins for the paper's per-epoch crops).
        test_full_length: test rows use the whole file (the paper's protocol), not the first crop.
        protocol: "paper" also writes each test file's first `crop_seconds` (zero-padded) as
            `test_head` rows, the paper's probe test rows (reconstruction and disentanglement keep
            whole files); needs `crop_seconds` and `test_full_length`. "saelight": whole files.
        storage_dtype: float32, float16 or bfloat16 on disk (rows are float32 when read).
        clips_per_shard: clips per shard; also the unit of resumption.
        batch_size: waveforms per backbone forward.
        on_bad_input: "skip" logs and records bad audio / non-finite activations; "error" stops
            (after committing every clip before the bad one).
        egemaps: store the 88 eGeMAPSv02 functionals of each test segment as factors (the rows that
            disentanglement and the explorer score; other splits get NaN), computed at the
            source's own rate (`AudioSource.native_rate`, e.g. VocalSet's 44.1 kHz; the backbone's
            rate when unknown), so they do not depend on the backbone; needs opensmile.
        seed: seed of the random crop positions.
        on_locked: what a second process does while another one writes this cache directory:
            "wait" for it (then reuse or resume its cache) or "error" at once, naming its pid.
    """

    def __init__(
        self,
        directory: str,
        source: AudioSource,
        backbone: Backbone,
        pooling: Literal["clip", "frame"] = "clip",
        crop_seconds: float | None = None,
        crops_per_file: int = 1,
        test_full_length: bool = True,
        protocol: Literal["saelight", "paper"] = "saelight",
        storage_dtype: Literal["float32", "float16", "bfloat16"] = "float32",
        clips_per_shard: int = 512,
        batch_size: int = 16,
        on_bad_input: Literal["skip", "error"] = "skip",
        egemaps: bool = False,
        seed: int = DATA_SEED,
        on_locked: Literal["wait", "error"] = "wait",
    ) -> None:
        self.check_args(
            pooling=pooling,
            storage_dtype=storage_dtype,
            crops_per_file=crops_per_file,
            clips_per_shard=clips_per_shard,
            batch_size=batch_size,
            on_bad_input=on_bad_input,
            on_locked=on_locked,
            crop_seconds=crop_seconds,
            protocol=protocol,
            test_full_length=test_full_length,
        )
        self.directory = Path(directory)
        self.source, self.backbone = source, backbone
        self.pooling, self.crop_seconds, self.crops_per_file = pooling, crop_seconds, crops_per_file
        self.test_full_length, self.storage_dtype = test_full_length, storage_dtype
        self.clips_per_shard, self.batch_size = clips_per_shard, batch_size
        self.on_bad_input, self.egemaps, self.seed = on_bad_input, egemaps, seed
        self.on_locked, self.protocol = on_locked, protocol

    check_args = staticmethod(check_cache_options)
    """The checks of the section's own values (the CLI runs them before the backbone is built)."""

    @property
    def layers(self) -> list[int]:
        return list(self.backbone.layers)

    @property
    def dim(self) -> int:
        return int(self.backbone.hidden_size)

    def recipe(self) -> dict[str, Any]:
        """The manifest fields that identify this cache (compared before reuse or resumption)."""
        return {
            "format_version": FORMAT_VERSION,
            "backbone": self.backbone.identity(),
            "source": self.source.fingerprint(),
            "extraction": {
                "pooling": self.pooling,
                "crop_seconds": self.crop_seconds,
                "crops_per_file": self.crops_per_file,
                "test_full_length": self.test_full_length,
                "protocol": self.protocol,
                "storage_dtype": self.storage_dtype,
                "egemaps": self.egemaps,
                "egemaps_rate": EGEMAPS_RATE,
                "seed": self.seed,
                "sample_rate": self.backbone.sample_rate,
            },
            "layers": self.layers,
            "dim": self.dim,
        }

    def is_complete(self) -> bool:
        manifest = read_manifest(self.directory)
        return bool(manifest and manifest.get("complete"))

    def open(self, verify: bool = False) -> CacheReader:
        """A reader of the complete cache, after checking it matches this recipe."""
        manifest = read_manifest(self.directory)
        if manifest is None or not manifest.get("complete"):
            raise CacheNotFoundError(
                f"no complete activation cache in {self.directory}",
                hint="build it with `saelight cache --config ...`",
            )
        check_compatible(manifest, self.recipe(), self.directory)
        return CacheReader(self.directory, verify=verify)

    def build(self, progress: bool = True) -> CacheReader:
        """Extract every clip not yet cached; return a reader of the complete cache.

        Under Lightning DDP, torchrun or `srun` (WORLD_SIZE/RANK set) the processes split the
        clips (see `saelight.cache.parts`): each writes its own shards and part manifest, and rank 0
        merges them into `manifest.json` once all are done. Every process returns the reader.
        A complete cache is opened without loading the backbone; writing takes the directory's
        lock (`cache.lock`), so two runs on one cache never extract side by side.
        """
        recipe = self.recipe()
        header = read_manifest(self.directory)
        if header is not None:
            check_compatible(header, recipe, self.directory)
            if header["complete"]:
                return self.open()
        self.source.validate()
        self._make_directory()
        lock = CacheLock(self.directory, rank=process_rank(), on_locked=self.on_locked)
        try:
            lock.acquire()
        except OSError as err:
            raise self._unwritable(err) from err
        try:
            return self._build_locked(recipe, progress)
        finally:
            lock.release()

    def _build_locked(self, recipe: dict[str, Any], progress: bool) -> CacheReader:
        # Re-read: the process that held the lock before us may have completed this cache.
        header = read_manifest(self.directory)
        if header is not None:
            check_compatible(header, recipe, self.directory)
            if header["complete"]:
                return self.open()
        clips = self.source.clips()
        t0 = time.perf_counter()

        def extract(rank: int, world: int) -> None:
            nonlocal header
            if rank == 0 and header is None:
                header = self._new_header(recipe)
            self._extract_part(clips, rank, world, header, progress)

        def finish() -> None:
            assert header is not None
            manifest = merge(self.directory, header, read_parts(self.directory, recipe), len(clips))
            log.info(
                "cache %s complete: %d rows, %d clips skipped, %.1f s",
                self.directory,
                manifest["n_rows"],
                len(manifest["skipped"]),
                time.perf_counter() - t0,
            )

        extract_then_merge(self.directory, extract, finish)
        return self.open()

    def _new_header(self, recipe: dict[str, Any]) -> dict[str, Any]:
        header = new_header(recipe)
        self._make_directory()
        try:
            write_manifest(self.directory, header)
        except OSError as err:
            raise self._unwritable(err) from err
        return header

    def _make_directory(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise self._unwritable(err) from err

    def _unwritable(self, err: OSError) -> OSError:
        return OSError(
            err.errno,
            f"cannot write the activation cache in {self.directory}: {err.strerror or err}; "
            "point data.cache.directory at a writable directory with free space",
        )

    def _extract_part(
        self,
        clips: list[Clip],
        rank: int,
        world: int,
        header: dict[str, Any] | None,
        progress: bool,
    ) -> None:
        """Extract this rank's clips that no shard covers yet, committing to its part manifest."""
        recipe = self.recipe()
        self._make_directory()
        parts = read_parts(self.directory, recipe)
        name = part_name(rank)
        part = dict(parts).get(name) or {**recipe, "n_rows": 0, "shards": [], "skipped": []}
        done = covered([header["shards"] if header else []] + [p["shards"] for _, p in parts])
        runs = todo(len(clips), self.clips_per_shard, rank, world, done)
        if world > 1:
            self._use_local_gpu(rank)
        n_todo = sum(b - a for a, b in runs)
        if done:
            log.info("cache %s: resuming, rank %d has %d clips left", self.directory, rank, n_todo)
        where = f"{self.directory}" + (f" (rank {rank}/{world})" if world > 1 else "")
        bar = progress_bar(
            n_todo, f"extracting clips into {where}", "clip", enabled=progress and rank == 0
        )
        writer = ShardWriter(self.directory, part, name)
        for start, end in runs:
            writer.begin(start)
            self._extract_range(clips, start, end, writer, bar)
            writer.commit(end)
        bar.close()

    def _use_local_gpu(self, rank: int) -> None:
        """With a plain "cuda" device, move the backbone to this process's GPU (LOCAL_RANK)."""
        device = getattr(self.backbone, "device", None)  # duck-typed test backbones have none
        if device is None or device.type != "cuda" or device.index is not None:
            return
        local = int(os.environ.get("LOCAL_RANK", rank)) % max(torch.cuda.device_count(), 1)
        self.backbone.to(torch.device("cuda", local))

    def _extract_range(
        self, clips: list[Clip], start: int, end: int, writer: ShardWriter, bar: Any
    ) -> None:
        """Queue the rows of clips [start, end); a clip's crops always share one backbone batch."""
        batch: list[Item] = []
        for index, clip, loaded in self._load_ahead(clips, start, end):
            if isinstance(loaded, BadAudioError):
                if self.on_bad_input == "error" and batch:
                    self._run_batch(batch, writer)  # the clips before the bad one are kept
                    batch = []
                self._bad(writer, clip, str(loaded), index)
            else:
                if batch and len(batch) + len(loaded) > self.batch_size:
                    self._run_batch(batch, writer)
                    batch = []
                batch.extend((index, clip, *segment) for segment in loaded)
            bar.update(1)
        if batch:
            self._run_batch(batch, writer)

    def _load_ahead(
        self, clips: list[Clip], start: int, end: int
    ) -> Iterator[tuple[int, Clip, Any]]:
        """Decode the next clips (and compute their eGeMAPS factors) on a thread while the
        backbone runs (soundfile, soxr and openSMILE drop the GIL)."""
        with ThreadPoolExecutor(max_workers=1) as pool:
            yield from zip(
                range(start, end),
                clips[start:end],
                pool.map(
                    lambda i, clip: self.segments_or_error(i, clip, egemaps=self.egemaps),
                    range(start, end),
                    clips[start:end],
                ),
                strict=True,
            )

    def segments_or_error(
        self, index: int, clip: Clip, egemaps: bool = False
    ) -> list[tuple[Segment, np.ndarray, dict[str, float]]] | BadAudioError:
        """(segment, its wave, its extra factor columns: the test segments' eGeMAPS when
        `egemaps`) of clip number `index`, whole file first, or why the clip is unusable."""
        sr = self.backbone.sample_rate
        try:
            wave, native = load_waves(self.source, clip, sr, egemaps and clip.split == "test")
            where = clip.path or clip.clip_id
            validate_waveform(wave, sr, min_samples=self.backbone.min_samples, where=where)
            segments = plan_segments(
                clip.split,
                len(wave),
                crop_samples=None if self.crop_seconds is None else round(self.crop_seconds * sr),
                crops_per_file=self.crops_per_file,
                test_full_length=self.test_full_length,
                protocol=self.protocol,
                seed=self.seed,
                index=index,
            )
            factors = [
                segment_egemaps(seg, native, len(wave), sr)
                if egemaps and seg.split == "test"
                else {}
                for seg in segments
            ]
        except BadAudioError as err:
            return err
        return [
            (seg, crop_or_pad(wave, seg.end - seg.start, seg.start), f)
            for seg, f in zip(segments, factors, strict=True)
        ]

    def _bad(self, writer: ShardWriter, clip: Clip, reason: str, index: int) -> None:
        if self.on_bad_input == "error":
            writer.commit(index)  # keep every clip before the bad one
            where = str(clip.path or clip.clip_id)
            raise BadAudioError(
                reason if where in reason else f"{where}: {reason}",
                hint="set cache.on_bad_input: skip to skip such clips",
            )
        log.warning("skipping %s: %s", clip.path or clip.clip_id, reason)
        writer.skip(index, clip.clip_id, clip.path, reason)

    def _run_batch(self, batch: list[Item], writer: ShardWriter) -> None:
        hidden, mask = self.backbone.extract([item[3] for item in batch])
        if self.pooling == "clip":
            rows = {layer: mean_pool(h, mask).float().numpy() for layer, h in hidden.items()}
            counts = np.ones(len(batch), dtype=np.int64)
        else:
            keep = mask.bool()
            rows = {layer: h[keep].float().numpy() for layer, h in hidden.items()}
            counts = keep.sum(1).numpy()
        finite = np.ones(int(counts.sum()), dtype=bool)
        for layer_rows in rows.values():
            finite &= np.isfinite(layer_rows).all(1)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        bad = {
            batch[i][0] for i in range(len(batch)) if not finite[offsets[i] : offsets[i + 1]].all()
        }
        keep_rows = np.zeros_like(finite)
        meta: list[dict[str, Any]] = []
        reported: set[int] = set()
        for i, (index, clip, seg, _, factors) in enumerate(batch):
            lo, hi = offsets[i], offsets[i + 1]
            if index in bad:
                if self.on_bad_input == "error":  # keep the clips before it, then stop
                    writer.add({layer: r[keep_rows] for layer, r in rows.items()}, meta)
                if index not in reported:  # report each clip once, with all its rows dropped
                    reported.add(index)
                    self._bad(writer, clip, "non-finite activations", index)
                continue
            keep_rows[lo:hi] = True
            meta.extend(
                row_metadata(index, clip, seg, int(hi - lo), self.backbone, self.pooling, factors)
            )
        writer.add({layer: r[keep_rows] for layer, r in rows.items()}, meta)
