"""The CPU/GPU fast paths of the TopK family, behind one entry point.

Architectures import from here only: `SparseCodes` (what an encoder returns), the decode and
gather products, the top-k pattern builders, and the switches that pick a path (`use_sparse`,
`shortlist_dtype`, `compute_dtype`). The modules below are how: the encoder top-k with a
lower-precision shortlist (`encoder_topk`, `int8_shortlist`, `native_bf16`, `row_topk`), the
sparse decode and its backward (`sparse_ops`, `sparse_pattern`), and the one-off CPU probes
(`cpu_probe`). Measurements behind their thresholds: benchmarks/README.md.
"""

from saelight.sae.kernels.native_bf16 import emulated_bf16_warning, shortlist_dtype
from saelight.sae.kernels.sparse_ops import (
    Pattern,
    SparseCodes,
    compute_dtype,
    decode_codes,
    dense_codes,
    gather_codes,
    pattern_from_flat,
    pattern_from_topk,
    sparse_topk_codes,
    use_sparse,
)

__all__ = [
    "Pattern",
    "SparseCodes",
    "compute_dtype",
    "decode_codes",
    "dense_codes",
    "emulated_bf16_warning",
    "gather_codes",
    "pattern_from_flat",
    "pattern_from_topk",
    "shortlist_dtype",
    "sparse_topk_codes",
    "use_sparse",
]
