"""`saelight cache`: build (or resume) the activation cache a config describes, without training."""

from __future__ import annotations

from saelight.data.datamodule import ActivationDataModule


def cache(data: ActivationDataModule) -> None:
    """Extract (or resume extracting) the activation cache of a config, without training.

    Reads the `data:` section of the same YAML `saelight fit` takes (`--config X.yaml`, overrides
    such as `--data.cache.source.init_args.root DIR`), so a cache built here on a GPU node is the
    one `fit` later reuses. A complete cache of the same recipe is reused as it is, after every
    file is checked against its sha256 as `fit` checks it (`data.verify_checksums`); an
    interrupted one resumes at the first clip no shard covers.

    Args:
        data: the activation datamodule of the config (its `cache` says what to extract).
    """
    complete = data.cache.is_complete()
    reader = data.cache.build()
    if complete and data.verify_checksums:
        reader = data.cache.open(verify=True)
    verified = ", every file verified" if complete and data.verify_checksums else ""
    print(
        f"cache {reader.directory}: {len(reader)} rows, layers {reader.layers}, dim {reader.dim}"
        + verified
    )
