"""Whole-grid training steps (every SAE of a config sees the batch), for benchmarks/as_shipped.py.

A grid step is what `SAEModule.training_step` and its hooks do for all SAEs of a config: one
summed loss, one backward, one optimiser over every parameter. The same grid is built for the
plain dense fp32 loop (steps.PlainTopK, default Adam) and for each peer (sparsify, SAELens), with
each SAE's d_sae and k taken from the config. Like steps.py, only torch and `saelight.sae` are
imported, so the peers' virtual environment runs this too.
"""

from __future__ import annotations

import contextlib
import importlib
from typing import Any

import torch
import torch.nn.functional as F
from steps import PlainTopK, Step

from saelight.sae import SAE
from saelight.sae.dead_latents import dead_window


def grid_of(
    saes: list[dict], sparsities: list[float] | None, n_layers: int, d_in: int
) -> list[dict]:
    """One dict per grid SAE: class_path, init_args (with the grid sparsity), and the d_sae and
    k the built SAE has (its class resolves the sparsity and supplies unset defaults)."""
    specs = []
    for _ in range(n_layers):
        for spec in saes:
            for s in sparsities or [None]:
                init = dict(spec.get("init_args", {}))
                args = {**init, "k": None, "sparsity": s} if s is not None else init
                entry = {"class_path": spec["class_path"], "init_args": args}
                sae = build(entry, d_in)
                specs.append({**entry, "d_sae": sae.d_sae, "k": sae.k})
    return specs


def build(spec: dict, d_in: int) -> SAE:
    module, name = spec["class_path"].rsplit(".", 1)
    return getattr(importlib.import_module(module), name)(d_in, **spec["init_args"])


def _cycle(data: list[torch.Tensor]):
    i = 0
    while True:
        yield data[i % len(data)]
        i += 1


def saelight_grid_step(specs: list[dict], d_in: int, data: list[torch.Tensor]) -> Step:
    """`SAEModule`'s fp32 step over the grid: fused Adam over all SAEs, dead-latent counters."""
    torch.manual_seed(0)
    saes = [build(s, d_in) for s in specs]
    for sae in saes:
        sae.initialize_from_data(data[0])
    params = [p for sae in saes for p in sae.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3, fused=True)
    counters = [torch.zeros(sae.d_sae, dtype=torch.long) for sae in saes]
    windows = [dead_window(sae, None) for sae in saes]
    batches = _cycle(data)

    def step() -> torch.Tensor:
        x = next(batches)
        opt.zero_grad(set_to_none=True)
        total = x.new_zeros(())
        for sae, counter, window in zip(saes, counters, windows, strict=True):
            out = sae(x, dead_mask=counter >= window)
            total = total + F.mse_loss(out.x_hat.float(), x) + out.aux_loss
            fired = out.codes.fired() if out.codes is not None else (out.z > 0).any(0)
            counter.add_(x.shape[0]).masked_fill_(fired, 0)
        total.backward()
        for sae in saes:
            sae.remove_parallel_decoder_grad()
        opt.step()
        for sae in saes:
            sae.normalize_decoder()
        return total.detach()

    return step


def plain_grid_step(specs: list[dict], d_in: int, data: list[torch.Tensor]) -> Step:
    """The grid as plain dense fp32 TopK SAEs (steps.PlainTopK), one default Adam."""
    torch.manual_seed(0)
    models = []
    for s in specs:
        like = build(s, d_in)
        like.initialize_from_data(data[0])
        models.append(PlainTopK(like))
    opt = torch.optim.Adam([p for m in models for p in m.parameters()], lr=1e-3)
    batches = _cycle(data)

    def step() -> torch.Tensor:
        x = next(batches)
        loss = sum(F.mse_loss(m(x), x) for m in models)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for m in models:
            m.decoder_grad_hook()
        opt.step()
        for m in models:
            m.renorm()
        return loss.detach()

    return step


def _peer_sae(peer: str, d_in: int, d_sae: int, k: int) -> Any:
    if peer == "sparsify":
        from sparsify import SparseCoder, SparseCoderConfig

        return SparseCoder(d_in, SparseCoderConfig(num_latents=d_sae, k=k))
    from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig

    return TopKTrainingSAE(TopKTrainingSAEConfig(d_in=d_in, d_sae=d_sae, k=k))


def peer_grid_step(
    peer: str, specs: list[dict], d_in: int, d_sae: int, data: list[torch.Tensor], bf16: bool
) -> Step:
    """The grid as a peer's SAEs (each with the spec's d_sae and k), as the peer's trainer steps
    them: sparsify fvu + auxk, gradient projection, renorm; SAELens its training_forward_pass."""
    torch.manual_seed(0)
    saes = [_peer_sae(peer, d_in, int(s.get("d_sae", d_sae)), int(s["k"])) for s in specs]
    opt = torch.optim.Adam([p for sae in saes for p in sae.parameters()], lr=1e-3)
    batches = _cycle(data)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    i = [0]

    def loss_of(sae: Any, x: torch.Tensor) -> torch.Tensor:
        if peer == "sparsify":
            out = sae(x, dead_mask=None)
            return out.fvu + out.auxk_loss
        from sae_lens.saes.sae import TrainStepInput

        return sae.training_forward_pass(TrainStepInput(x, {}, None, i[0], False)).loss

    def step() -> torch.Tensor:
        x = next(batches)
        i[0] += 1
        with autocast:
            loss = sum(loss_of(sae, x) for sae in saes)
        opt.zero_grad()
        loss.backward()
        if peer == "sparsify":
            for sae in saes:
                sae.remove_gradient_parallel_to_decoder_directions()
        opt.step()
        if peer == "sparsify":
            for sae in saes:
                sae.set_decoder_norm_to_unit_norm()
        return loss.detach()

    return step
