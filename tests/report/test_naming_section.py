"""The report's "Latent names" table counts, per SAE, the live latents named above NAMED_MIN by
descriptor family and the positional ones, from each explorer's latents.parquet."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from saelight.explorer.naming import NAMED_MIN
from saelight.report.naming_section import FAMILIES, naming_table


def test_counts_named_latents_by_family_and_positional(tmp_path: Path) -> None:
    folder = tmp_path / "explorer" / "L02_topk_s90"
    folder.mkdir(parents=True)
    pd.DataFrame(
        {
            "fires": [10, 10, 10, 10, 0],
            "name_family": ["pitch", "pitch", "label", "onsets", "pitch"],
            "name_score": [0.9, NAMED_MIN, 0.99, 0.6, 0.95],  # the dead latent is not counted
            "positional_flag": [False, True, False, True, True],
        }
    ).to_parquet(folder / "latents.parquet")
    (tmp_path / "explorer" / "L04_old").mkdir()  # an explorer written before names: skipped
    pd.DataFrame({"fires": [1]}).to_parquet(tmp_path / "explorer" / "L04_old" / "latents.parquet")
    table = naming_table([tmp_path])
    assert table is not None and table.columns == ["SAE", "live", "named", *FAMILIES, "positional"]
    (row,) = table.cells
    counts = dict(zip(table.columns, row, strict=True))
    assert (counts["SAE"], counts["live"], counts["named"]) == ("L02_topk_s90", "4", "3 (75%)")
    assert (counts["pitch"], counts["label"], counts["onsets"], counts["positional"]) == (
        "2", "1", "0", "2",
    )  # fmt: skip
    assert "Latents named" in table.markdown()


def test_no_names_no_table(tmp_path: Path) -> None:
    assert naming_table([tmp_path]) is None
