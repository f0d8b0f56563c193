"""The latent explorer (`saelight inspect`): what each SAE latent fires on, as a static page.

`explore(sae, reader, layer, out, source=...)` streams one split of the activation cache through
the SAE (`stats.LatentStats`), scores every latent against the labels and factors
(`selectivity`), cuts the audio of its top rows (`audio`) and writes `index.html` (`html`),
`latents.json`, `latents.parquet` and `labels.json`.
"""

from saelight.explorer.explore import analyse, encode_split, explore, label_ranking, latent_records
from saelight.explorer.stats import CodeSummary, LatentStats

__all__ = [
    "CodeSummary",
    "LatentStats",
    "analyse",
    "encode_split",
    "explore",
    "label_ranking",
    "latent_records",
]
