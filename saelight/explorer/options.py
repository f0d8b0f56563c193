"""The explorer's options, with their one default each: `explore`, the `LatentExplorer` callback
and `saelight inspect` name these in their signatures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Codec = Literal["flac", "opus"]


@dataclass(frozen=True)
class ExplorerOptions:
    """What an explorer page holds and how big it may get."""

    top_n: int = 10
    """Top activating rows kept (and shown) per latent."""
    split: str = "test"
    """The cache split whose rows are inspected."""
    max_page_mb: float = 20.0
    """Cap on index.html in MB (10^6 bytes): past it the audio, then the spectrograms, of the
    lower-ranked latents' rows are left out."""
    codec: Codec = "flac"
    """Embedded audio: "flac" (lossless) or "opus" (about a third of FLAC's size)."""
