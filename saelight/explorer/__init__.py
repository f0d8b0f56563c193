"""The latent explorer (`saelight inspect`): what each SAE latent fires on, as one static page.

`explore(sae, reader, layer, out, source=...)` streams one split of the activation cache through
the SAE (`stats.LatentStats`), scores every latent against the labels and factors (`analysis`,
`selectivity`: latents are ranked by the F1 of "fires" as a detector of a label value), builds the
tables (`records`), embeds each top row's audio and log-mel thumbnail within the page's size cap
(`media`, `audio`, `spectrogram`) and writes `index.html` (`html`, one file holding everything),
`latents.json`, `latents.parquet` and `labels.json`.
"""

from saelight.explorer.analysis import analyse, encode_split
from saelight.explorer.explore import explore
from saelight.explorer.records import label_ranking, latent_records
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
