"""Defaults that several stages share, each written once here and named in their signatures.

Two seed conventions, kept apart on purpose (changing either would change every published run):
`EVAL_SEED` seeds what is fitted on held-out rows after training (probes, Lasso and DCI fits,
row subsets, splice clip subsets); `DATA_SEED` seeds what decides the data a run sees (sources'
splits, synthetic audio, shuffling, untrained backbones, bootstrap resamples).
"""

EVAL_SEED = 42
"""Seed of the post-training fits and subsets (probes, disentanglement, splice, sweeps)."""
DATA_SEED = 0
"""Seed of data order and generation (splits, shuffles, synthetic audio, bootstrap draws)."""
MAX_ROWS = 20_000
"""Rows per split that the post-training fits read (a seeded subset of a frame cache)."""
SPLICE_SPLIT = "test"
"""The held-out split `saelight splice` and `SAEEvaluation(splice=True)` run."""
K_ABLATE = 8
"""Latents ablated per label value by splice (both paths write the same splice.json), and the
latents `saelight steer --latents label=value` edits."""
EFFECT_LATENTS = 16
"""Latents per SAE whose single ablation splice scores on the output head (the best detectors of
each label value, round robin): one extra forward pass per latent and batch of clips."""
SCORE_OUTPUT_HEAD = True
"""Splice also scores the model's own output when the checkpoint has a head (Whisper, CTC,
classifier): it loads the head model beside the encoder."""
OUTLIER_NORM_MULTIPLE = 10.0
"""A row whose norm exceeds this multiple of its layer's median is an outlier: it never seeds a
resampled latent, and the fit's start-up report counts it (massive activations: Whisper-base
layer 5 holds rows at 20x; normal rows stay under ~4x)."""
