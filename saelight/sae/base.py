"""The one interface every SAE architecture implements, plus initialisation and export.

Parameters use the SAELens orientation: `W_enc` (d_in, d_sae), `b_enc` (d_sae,), `W_dec`
(d_sae, d_in), `b_dec` (d_in,). Subclasses (one file each) override `activate` and `aux_loss`, or
`forward` and `encode` when training and inference differ (the TopK family). Each also says how a
target sparsity maps to its own knob (`sparsity_init_args`), so the grid, the evaluation and the
export ask the SAE rather than read `k`. An export is a folder holding `CFG_FILE` and
`WEIGHTS_FILE`, readable by `SAE.from_pretrained` and by `sae_lens.SAE.load_from_disk`.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

import torch
from safetensors.torch import save
from torch import Tensor, nn

from saelight.io.atomic import atomic_write_bytes, atomic_write_text
from saelight.io.checksum import sha256_bytes
from saelight.sae.export_files import CFG_FILE, WEIGHTS_FILE, WEIGHTS_SHA256
from saelight.sae.kernels import SparseCodes
from saelight.sae.saelens import saelens_cfg

B_DEC_INITS = ("zeros", "mean", "geometric_median")
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
_ROW_BLOCK = 1024


class _SAEOutputFields(NamedTuple):
    x_hat: Tensor
    """(batch, d_in) reconstruction of the raw input."""
    z: Tensor | None
    """(batch, d_sae) dense non-negative codes, for metrics and dead-latent counting. The TopK
    family stores None and `SAEOutput.z` builds the matrix from `codes` when first read."""
    aux_loss: Tensor
    """Scalar, already weighted: AuxK, L1, L0 or multi-k terms; exactly 0 when there are none."""
    codes: SparseCodes | None = None
    """The non-zero entries of z (TopK family; None for the others). The trainer reads these:
    at batch 4096 × d_sae 6144 the dense z is 100 MB that a training step never needs."""


class SAEOutput(_SAEOutputFields):
    """What `SAE.forward` returns; the training loss is `mse(x_hat, x) + aux_loss`.

    A NamedTuple (x_hat, z, aux_loss, codes) whose `z` is always a dense tensor when read, by
    attribute, index or unpacking; it is only built on that first read when `codes` holds it.
    """

    __slots__ = ()

    @property
    def z(self) -> Tensor:  # type: ignore[override]
        z = tuple.__getitem__(self, 1)
        if z is None:
            if self.codes is None:
                raise ValueError("SAEOutput holds neither z nor codes")
            return self.codes.dense()
        return z

    def __iter__(self) -> Iterator[Any]:
        return iter((self.x_hat, self.z, self.aux_loss, self.codes))

    def __getitem__(self, index: Any) -> Any:  # type: ignore[override]
        return tuple(self)[index]


class SAE(nn.Module):
    """Sparse autoencoder x -> z = f((s·x - b_dec) W_enc + b_enc) -> x_hat = (z W_dec + b_dec) / s.

    `s` is the `input_scale` buffer: 1, or with `normalize_input` the scalar that makes the mean of
    ||s·x||² over the first batch equal to d_in. `encode`, `decode` and `forward` always take and
    return raw activations; every penalty in `aux_loss` is computed in the normalised space and
    multiplied by `loss_scale` = 1/s², so `mse(x_hat, x) + aux_loss` is the normalised-space loss
    times the constant 1/s² (Adam is invariant to that factor) and coefficients keep their meaning
    across layers. `save_pretrained` folds s into the weights (W_enc·s, W_dec/s, b_dec/s), which
    leaves every code z unchanged.
    """

    registry: ClassVar[dict[str, type[SAE]]] = {}
    architecture: ClassVar[str]
    sparsity_attr: ClassVar[str]
    """The attribute a sparsity schedule moves (k, l1_coefficient, ...)."""
    saelens_architecture: ClassVar[str | None] = None
    """The name SAELens loads this architecture's export as; None when it has none."""

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        """Registers `cls` under its `architecture`; `abstract=True` marks a shared base class
        (the TopK family) that is never built itself and so declares no name."""
        super().__init_subclass__(**kwargs)
        if abstract:
            return
        name = cls.__dict__.get("architecture")
        if not isinstance(name, str):
            raise TypeError(f"{cls.__name__} must declare `architecture: ClassVar[str]`")
        if name in SAE.registry:
            raise ValueError(
                f"SAE architecture {name!r} is already registered by "
                f"{SAE.registry[name].__qualname__}; pick another name for {cls.__qualname__}"
            )
        SAE.registry[name] = cls

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        *,
        decoder_bias: bool = True,
        unit_norm_decoder: bool = True,
        encoder_init_from_decoder: bool = True,
        b_dec_init: Literal["zeros", "mean", "geometric_median"] = "mean",
        normalize_input: bool = False,
    ) -> None:
        """Builds the four SAE tensors with a seeded, deterministic initialisation.

        Args:
            d_in: width of the activations.
            d_sae: number of latents (dictionary size).
            decoder_bias: learn `b_dec`, subtracted from the input and added to the output; if
                False `b_dec` is a zero buffer (the paper preset).
            unit_norm_decoder: keep every row of `W_dec` at unit L2 norm (initialised so, and
                restored by `normalize_decoder` after each optimiser step).
            encoder_init_from_decoder: initialise `W_enc = W_dec.T` (Gao et al. 2024, sec. 2.4);
                otherwise U(-1/sqrt(d_in), 1/sqrt(d_in)) like `nn.Linear`.
            b_dec_init: how `initialize_from_data` sets `b_dec` from the first batch; ignored
                without `decoder_bias`.
            normalize_input: scale inputs by a scalar so that mean ||x||² = d_in on the first
                batch (stored as the `input_scale` buffer, folded into the weights at export).
        """
        super().__init__()
        if d_in < 1 or d_sae < 1:
            raise ValueError(f"d_in and d_sae must be >= 1, got d_in={d_in}, d_sae={d_sae}")
        if b_dec_init not in B_DEC_INITS:
            raise ValueError(f"b_dec_init must be one of {B_DEC_INITS}, got {b_dec_init!r}")
        self.d_in, self.d_sae = d_in, d_sae
        self.decoder_bias = decoder_bias
        self.unit_norm_decoder = unit_norm_decoder
        self.encoder_init_from_decoder = encoder_init_from_decoder
        self.b_dec_init = b_dec_init
        self.normalize_input = normalize_input

        if unit_norm_decoder:
            W_dec = torch.randn(d_sae, d_in)
            W_dec /= W_dec.norm(dim=1, keepdim=True)
        else:
            W_dec = torch.empty(d_sae, d_in).uniform_(-1, 1) / math.sqrt(d_sae)
        if encoder_init_from_decoder:
            W_enc = W_dec.T.clone()
        else:
            W_enc = torch.empty(d_in, d_sae).uniform_(-1, 1) / math.sqrt(d_in)
        # Contiguous, although W_dec.T.clone() keeps W_dec's strides: fused Adam copies a
        # non-contiguous tensor (and its grad and moments) to contiguous ones on every step.
        self.W_enc = nn.Parameter(W_enc.contiguous())
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.W_dec = nn.Parameter(W_dec)
        if decoder_bias:
            self.b_dec = nn.Parameter(torch.zeros(d_in))
        else:
            self.register_buffer("b_dec", torch.zeros(d_in))
        self.register_buffer("input_scale", torch.ones(()))
        self.baseline: str | None = None  # a random baseline's kind (`saelight.sae.baselines`)

    @classmethod
    def sparsity_init_args(cls, sparsity: float) -> dict[str, Any]:
        """The init args that build this architecture at a target `sparsity` (fraction of zero
        latents), for `model.sparsities`; the base class has no such knob and says which field
        to set instead."""
        raise ValueError(
            f"model.sparsities sets the fraction of zero latents, which {cls.__name__} cannot "
            f"take: its sparsity follows `{cls.sparsity_attr}`. Set model.sparsities: null and "
            f"give the {cls.__name__} spec its own `{cls.sparsity_attr}`"
        )

    @property
    def target_sparsity(self) -> float | None:
        """The sparsity this SAE is built for (None when only a measured L0 can tell)."""
        return None

    @property
    def sparsity_knob(self) -> float:
        """The value of `sparsity_attr`, as a sparsity schedule reads and sets it."""
        return float(getattr(self, self.sparsity_attr))

    @sparsity_knob.setter
    def sparsity_knob(self, value: float) -> None:
        setattr(self, self.sparsity_attr, value)

    def identity(self) -> dict[str, Any]:
        """The columns a results row takes from its SAE: architecture, d_sae, k, sparsity."""
        identity = {"architecture": self.architecture, "d_sae": self.d_sae, "k": None}
        identity["sparsity"] = self.target_sparsity
        return identity if self.baseline is None else {**identity, "baseline": self.baseline}

    def eval_variants(self) -> dict[str, SAE]:
        """{name suffix: SAE} to evaluate; just this one unless it trains several k at once."""
        return {"": self}

    def saelens_fields(self) -> dict[str, Any]:
        """Architecture-specific `CFG_FILE` fields SAELens' config class reads (e.g. `k`)."""
        return {}

    @property
    def loss_scale(self) -> Tensor:
        """1/s²: converts a normalised-space loss to the units of mse on raw activations."""
        return self.input_scale.reciprocal().square()

    def normalize(self, x: Tensor) -> Tensor:
        """x: (batch, d_in) raw -> s·x, the input in the normalised space."""
        return x * self.input_scale if self.normalize_input else x

    def denormalize(self, x_hat: Tensor) -> Tensor:
        """x_hat: (batch, d_in) in the normalised space -> x_hat / s, in raw units."""
        return x_hat / self.input_scale if self.normalize_input else x_hat

    def center(self, x: Tensor) -> Tensor:
        """x: (batch, d_in) raw -> s·x - b_dec, the encoder input in the normalised space."""
        return self.normalize(x) - self.b_dec

    def pre_activation(self, x_c: Tensor) -> Tensor:
        """x_c: (batch, d_in) centred input -> z_pre = x_c W_enc + b_enc, (batch, d_sae)."""
        # addmm keeps z_pre in the autocast dtype; `@` followed by `+ b_enc` would promote to fp32.
        return torch.addmm(self.b_enc, x_c, self.W_enc)

    def activate(self, z_pre: Tensor) -> Tensor:
        """z_pre: (batch, d_sae) -> z: (batch, d_sae) non-negative codes (training semantics)."""
        raise NotImplementedError

    def aux_loss(self, z_pre: Tensor, z: Tensor) -> Tensor:
        """The weighted sparsity penalty of `forward`, in raw-mse units; 0 by default."""
        return z.new_zeros((), dtype=torch.float32)

    def encode(self, x: Tensor) -> Tensor:
        """x: (batch, d_in) raw activations -> z: (batch, d_sae) codes (inference semantics)."""
        return self.activate(self.pre_activation(self.center(x)))

    def decode_normalized(self, z: Tensor) -> Tensor:
        """z: (batch, d_sae) -> z W_dec + b_dec, the reconstruction in the normalised space."""
        return z @ self.W_dec + self.b_dec

    def decode(self, z: Tensor) -> Tensor:
        """z: (batch, d_sae) -> x_hat: (batch, d_in) reconstruction of the raw activations."""
        return self.denormalize(self.decode_normalized(z))

    def forward(self, x: Tensor, dead_mask: Tensor | None = None) -> SAEOutput:
        """x: (batch, d_in) -> SAEOutput; `dead_mask` (d_sae,) is only used by AuxK subclasses."""
        z_pre = self.pre_activation(self.center(x))
        z = self.activate(z_pre)
        return SAEOutput(self.decode(z), z, self.aux_loss(z_pre, z))

    @torch.no_grad()
    def initialize_from_data(self, x: Tensor) -> None:
        """Sets `input_scale` and `b_dec` from the first training batch x: (batch, d_in)."""
        x = x.detach().to(self.W_dec.dtype)
        if self.normalize_input:
            mean_sq = x.square().sum(dim=1).mean().clamp_min(torch.finfo(x.dtype).tiny)
            self.input_scale.copy_((self.d_in / mean_sq).sqrt())
        x = x * self.input_scale
        if self.decoder_bias and self.b_dec_init == "mean":
            self.b_dec.copy_(x.mean(dim=0))
        elif self.decoder_bias and self.b_dec_init == "geometric_median":
            self.b_dec.copy_(geometric_median(x))

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Rescales every row of `W_dec` to unit norm (no-op without `unit_norm_decoder`, and
        for a frozen decoder, which must stay bit-identical)."""
        if self.unit_norm_decoder and self.W_dec.requires_grad:
            self.W_dec.div_(
                torch.linalg.vector_norm(self.W_dec, dim=1, keepdim=True).clamp_min(1e-12)
            )

    @torch.no_grad()
    def remove_parallel_decoder_grad(self) -> None:
        """Removes from each row of `W_dec.grad` its component along that row of `W_dec`."""
        grad = self.W_dec.grad
        if not self.unit_norm_decoder or grad is None:
            return
        W = self.W_dec
        sq_norm = torch.linalg.vector_norm(W, dim=1).square().clamp_min(1e-12)
        # vecdot materialises grad * W; in blocks of rows that temporary stays small.
        parallel = torch.empty_like(sq_norm)
        for lo in range(0, W.shape[0], _ROW_BLOCK):
            hi = lo + _ROW_BLOCK
            torch.linalg.vecdot(grad[lo:hi], W[lo:hi], dim=1, out=parallel[lo:hi])
        grad.addcmul_((parallel / sq_norm)[:, None], W, value=-1)

    @classmethod
    def init_parameters(cls) -> list[str]:
        """Names of the constructor arguments, following `**kwargs` up to `SAE.__init__`."""
        names: list[str] = []
        for klass in cls.__mro__:
            if "__init__" not in klass.__dict__:
                continue
            params = list(inspect.signature(klass.__init__).parameters.values())
            names += [p.name for p in params[1:] if p.kind not in _VARIADIC]
            if klass is SAE or not any(p.kind is p.VAR_KEYWORD for p in params):
                break
        return list(dict.fromkeys(names))

    def init_kwargs(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this SAE; ones not stored as attributes are
        left out."""
        return {n: getattr(self, n) for n in self.init_parameters() if hasattr(self, n)}

    @classmethod
    def init_args_from_cfg(cls, cfg: dict[str, Any]) -> dict[str, Any]:
        """The constructor arguments held in an export's `CFG_FILE`; other keys are ignored."""
        return {n: cfg[n] for n in cls.init_parameters() if n in cfg}

    def export_state(self) -> dict[str, Tensor]:
        """The tensors written to `WEIGHTS_FILE`, with `input_scale` folded into the weights."""
        state = {n: t.detach().clone() for n, t in self.state_dict().items()}
        s = state.pop("input_scale")
        state["W_enc"] *= s
        state["W_dec"] /= s
        state["b_dec"] /= s
        return state

    def import_state(self, tensors: dict[str, Tensor]) -> None:
        """Inverse of `export_state` (with `input_scale` = 1)."""
        self.load_state_dict({**tensors, "input_scale": torch.ones(())})

    def save_pretrained(self, directory: str | Path, **metadata: Any) -> None:
        """Writes `CFG_FILE` and `WEIGHTS_FILE` into `directory`, each atomically.

        `architecture` is the name SAELens knows (see `saelight.sae.saelens`), and
        `saelight_architecture` the one `from_pretrained` rebuilds.

        Args:
            directory: output folder, created if missing.
            **metadata: extra JSON-able keys for `CFG_FILE` (backbone, layer, pooling, ...).
        """
        state = self.export_state()
        blob = save({n: t.to("cpu").contiguous() for n, t in state.items()})
        cfg: dict[str, Any] = {
            "architecture": self.saelens_architecture or self.architecture,
            "saelight_architecture": self.architecture,
            **self.init_kwargs(),
            **self.saelens_fields(),
            **saelens_cfg(state["W_enc"].dtype, metadata),
            # The export works on raw activations, so reloading must not normalise again.
            "normalize_input": False,
            "folded_input_scale": float(self.input_scale),
            **({"baseline": self.baseline} if self.baseline else {}),
            WEIGHTS_SHA256: sha256_bytes(blob),
        }
        clash = sorted(set(cfg) & set(metadata))
        if clash:
            raise ValueError(f"metadata keys {clash} clash with the SAE's own cfg keys")
        cfg.update(metadata)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(directory / WEIGHTS_FILE, blob)
        atomic_write_text(directory / CFG_FILE, json.dumps(cfg, indent=2) + "\n")

    @classmethod
    def from_pretrained(
        cls,
        path_or_repo: str | Path,
        device: str | torch.device = "cpu",
        subfolder: str | None = None,
        revision: str | None = None,
    ) -> SAE:
        """Loads a `save_pretrained` export from a folder or the Hugging Face Hub. No pickle.

        Unknown `CFG_FILE` keys are ignored; the weights' checksum and shapes are checked first.

        Args:
            path_or_repo: an export folder; when no such directory exists, a Hub repo id.
            device: where the loaded SAE lives.
            subfolder: the export's folder inside it (a pushed run holds one per SAE).
            revision: branch, tag or commit of the Hub repo; None: its default branch.
        """
        from saelight.sae.hub import load_export, resolve_export

        return load_export(cls, resolve_export(path_or_repo, subfolder, revision)).to(device)

    def extra_repr(self) -> str:
        return f"d_in={self.d_in}, d_sae={self.d_sae}"


def geometric_median(x: Tensor, max_iter: int = 100, tol: float = 1e-6) -> Tensor:
    """x: (n, d) -> the point minimising Σ_i ||x_i - y||, by Weiszfeld iterations."""
    y = x.mean(dim=0)
    for _ in range(max_iter):
        weights = (x - y).norm(dim=1).clamp_min(1e-8).reciprocal()
        y_next = (weights[:, None] * x).sum(dim=0) / weights.sum()
        done = (y_next - y).norm() <= tol * y.norm().clamp_min(1e-8)
        y = y_next
        if done:
            break
    return y
