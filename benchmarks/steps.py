"""Training steps shared by the benchmarks: a plain dense fp32 PyTorch TopK SAE and saelight's.

Only torch and `saelight.sae` are imported, so benchmarks/peers/step_peers.py can run these in the
peers' virtual environment too. A step is forward, mse (+ aux) loss, backward, Adam, and the
unit-norm decoder handling (parallel-gradient removal, row renormalisation) when it is on.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from saelight.sae import SAE, TopKSAE

Step = Callable[[], Tensor]


class PlainTopK(nn.Module):
    """The baseline: the obvious dense fp32 TopK SAE (Gao et al.) with no custom kernels.

    It starts from the weights of a saelight `TopKSAE` so that both train the same function.
    """

    def __init__(self, like: TopKSAE) -> None:
        super().__init__()
        self.k, self.unit_norm = like.k, like.unit_norm_decoder
        for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
            setattr(self, name, nn.Parameter(getattr(like, name).detach().clone().contiguous()))

    def forward(self, x: Tensor) -> Tensor:
        z_pre = F.relu((x - self.b_dec) @ self.W_enc + self.b_enc)
        vals, idx = z_pre.topk(self.k, dim=-1)
        z = torch.zeros_like(z_pre).scatter(-1, idx, vals)
        return z @ self.W_dec + self.b_dec

    @torch.no_grad()
    def decoder_grad_hook(self) -> None:
        if self.unit_norm and self.W_dec.grad is not None:
            W, g = self.W_dec, self.W_dec.grad
            g -= (g * W).sum(1, keepdim=True) / (W * W).sum(1, keepdim=True) * W

    @torch.no_grad()
    def renorm(self) -> None:
        if self.unit_norm:
            self.W_dec /= self.W_dec.norm(dim=1, keepdim=True)


def plain_step(model: PlainTopK, data: list[Tensor], lr: float = 1e-4) -> Step:
    """Plain loop: fp32, default (for-loop) Adam, dense codes."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    i = [0]

    def step() -> Tensor:
        x = data[i[0] % len(data)]
        i[0] += 1
        loss = F.mse_loss(model(x), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        model.decoder_grad_hook()
        opt.step()
        model.renorm()
        return loss.detach()

    return step


def saelight_step(
    sae: SAE,
    data: list[Tensor],
    bf16: bool = True,
    dead: Tensor | None = None,
    lr: float = 1e-4,
    fused: bool = True,
) -> Step:
    """What `SAEModule` runs per batch for one SAE (bf16-mixed precision): the previous
    gradients dropped first (as `SAEModule.on_train_batch_start` does), forward under autocast,
    fp32 mse + aux and the dead-latent update from the fired latents (`training_step`), backward,
    decoder-gradient projection, fused Adam (as `SAEModule.configure_optimizers` picks) and
    decoder renormalisation. The SAEOutput goes out of scope before the backward, as it does
    when `training_step` returns."""
    opt = torch.optim.Adam(sae.parameters(), lr=lr, fused=fused)
    device = data[0].device.type
    autocast = torch.autocast(device, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    since_fired = torch.zeros(sae.d_sae, dtype=torch.long, device=data[0].device)
    i = [0]

    def training_step(x: Tensor) -> Tensor:
        with autocast:
            out = sae(x, dead)
            loss = F.mse_loss(out.x_hat.float(), x) + out.aux_loss
        fired = out.codes.fired() if out.codes is not None else (out.z > 0).any(0)
        since_fired.add_(x.shape[0]).masked_fill_(fired, 0)
        return loss

    def step() -> Tensor:
        x = data[i[0] % len(data)]
        i[0] += 1
        opt.zero_grad(set_to_none=True)
        loss = training_step(x)
        loss.backward()
        sae.remove_parallel_decoder_grad()
        opt.step()
        sae.normalize_decoder()
        return loss.detach()

    return step


def synthetic_batches(
    n: int, batch: int, d_in: int, device: str = "cpu", seed: int = 0
) -> list[Tensor]:
    """`n` batches of sparse combinations of 4·d_in random unit directions plus noise: data an
    SAE can actually learn, so that the loss after a few steps compares two optimisations."""
    g = torch.Generator().manual_seed(seed)
    atoms = torch.randn(4 * d_in, d_in, generator=g)
    atoms /= atoms.norm(dim=1, keepdim=True)
    out = []
    for _ in range(n):
        codes = torch.rand(batch, 4 * d_in, generator=g)
        codes = torch.where(codes > 0.99, codes * 3, 0)
        x = codes @ atoms + 0.1 * torch.randn(batch, d_in, generator=g)
        out.append(x.to(device))
    return out


def measure(
    steps: dict[str, Step], batch: int, runs: int, per_run: int, warmup: int, device: str = "cpu"
) -> dict[str, dict[str, float]]:
    """samples/s of each step: median and best over `runs` runs of `per_run` steps.

    The steps take turns within every run, so load from other processes hits them alike.
    """
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for step in steps.values():
        for _ in range(warmup):
            step()
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(runs):
        for name, step in steps.items():
            sync()
            t0 = time.perf_counter()
            for _ in range(per_run):
                step()
            sync()
            rates[name].append(batch * per_run / (time.perf_counter() - t0))
    return {
        n: {"median": statistics.median(r), "best": max(r), "runs": r} for n, r in rates.items()
    }


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (Linux), to report with every timing."""
    try:
        with open("/proc/loadavg") as f:
            return [float(v) for v in f.read().split()[:3]]
    except OSError:
        return []


def add_shape_args(parser: argparse.ArgumentParser) -> None:
    """The issue's benchmark shape (d_in 768, d_sae 6144, k 32, batch 4096), defined once."""
    parser.add_argument("--d_in", type=int, default=768)
    parser.add_argument("--d_sae", type=int, default=6144)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--batch", type=int, default=4096)
