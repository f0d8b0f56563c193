"""The contract every SAE architecture passes, as plain checks over a seeded factory.

`test_base.py` runs `CHECKS` over the built-in architectures; a new architecture, even one defined
in a test file (`test_toy_architecture.py`), runs the same list by handing over its factory.
Each check takes `make(**overrides) -> SAE` (seeded, d_in = D_IN, d_sae = D_SAE) and a tmp dir.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from saelight.sae import SAE, SAEOutput
from saelight.sae.base import CFG_FILE, WEIGHTS_FILE

D_IN, D_SAE, K, BATCH = 16, 64, 4, 32
Make = Callable[..., SAE]


def data(seed: int = 1, batch: int = BATCH) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, D_IN, generator=g) * 3 + 2


def train_a_little(sae: SAE, x: torch.Tensor, steps: int = 3) -> None:
    """Moves every parameter and buffer (b_dec, thresholds, EMA) away from its initial value."""
    sae.initialize_from_data(x)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-2)
    for _ in range(steps):
        out = sae(x, torch.ones(D_SAE, dtype=torch.bool))
        (F.mse_loss(out.x_hat, x) + out.aux_loss).backward()
        opt.step()
        opt.zero_grad()
        sae.normalize_decoder()


def check_shapes_and_types(make: Make, tmp_path: Path) -> None:
    sae, x = make(), data()
    out = sae(x)
    assert isinstance(out, SAEOutput)
    assert out.x_hat.shape == (BATCH, D_IN) and out.z.shape == (BATCH, D_SAE)
    assert out.aux_loss.shape == () and (out.z >= 0).all()
    assert sae.encode(x).shape == (BATCH, D_SAE)
    assert sae.decode(sae.encode(x)).shape == (BATCH, D_IN)
    assert sae.W_enc.shape == (D_IN, D_SAE) and sae.W_dec.shape == (D_SAE, D_IN)
    assert sae.b_enc.shape == (D_SAE,) and sae.b_dec.shape == (D_IN,)
    assert isinstance(sae.sparsity_knob, float)


def check_gradients_reach_the_encoder(make: Make, tmp_path: Path) -> None:
    sae, x = make(), data()
    sae.initialize_from_data(x)
    out = sae(x)
    (F.mse_loss(out.x_hat, x) + out.aux_loss).backward()
    assert sae.W_enc.grad is not None and sae.W_enc.grad.abs().sum() > 0
    assert sae.b_dec.grad is not None and sae.b_dec.grad.abs().sum() > 0


def check_save_load_round_trip(make: Make, tmp_path: Path) -> None:
    for normalize_input in (False, True):
        sae, x = make(normalize_input=normalize_input), data()
        train_a_little(sae, x)
        if normalize_input:
            assert not torch.allclose(sae.input_scale, torch.ones(()))
        sae.eval()
        out = tmp_path / f"norm{int(normalize_input)}"
        sae.save_pretrained(out, backbone="tiny-hubert", layer=3)
        loaded = SAE.from_pretrained(out).eval()
        assert type(loaded) is type(sae) and loaded.identity() == sae.identity()
        torch.testing.assert_close(loaded.encode(x), sae.encode(x), rtol=1e-5, atol=1e-5)
        z = sae.encode(x)
        torch.testing.assert_close(loaded.decode(z), sae.decode(z), rtol=1e-5, atol=1e-5)
        cfg = json.loads((out / CFG_FILE).read_text())
        assert cfg["saelight_architecture"] == sae.architecture
        assert cfg["architecture"] == (sae.saelens_architecture or sae.architecture)
        assert cfg["backbone"] == "tiny-hubert" and cfg["layer"] == 3
        assert cfg["d_in"] == D_IN and cfg["d_sae"] == D_SAE and cfg["dtype"] == "float32"
        weights = load_file(str(out / WEIGHTS_FILE))
        assert {"W_enc", "b_enc", "W_dec", "b_dec"} <= set(weights)
        assert "input_scale" not in weights and not list(out.glob(".*tmp"))


def check_init_kwargs_rebuild_the_same_model(make: Make, tmp_path: Path) -> None:
    sae = make(decoder_bias=False, b_dec_init="zeros")
    kwargs = json.loads(json.dumps(sae.init_kwargs()))
    assert kwargs["decoder_bias"] is False
    torch.manual_seed(0)
    again = type(sae)(**kwargs)
    assert again.identity() == sae.identity()
    for (n, a), (_, b) in zip(sae.state_dict().items(), again.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, msg=n)


def check_seeded_init_is_deterministic(make: Make, tmp_path: Path) -> None:
    a, b = make(), make()
    torch.testing.assert_close(a.W_dec, b.W_dec)
    torch.testing.assert_close(a.W_enc, a.W_dec.T)  # encoder_init_from_decoder
    torch.manual_seed(5)
    c = type(a)(**a.init_kwargs())
    assert not torch.allclose(a.W_dec, c.W_dec)


def check_decoder_norm_invariants(make: Make, tmp_path: Path) -> None:
    sae, x = make(), data()
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(D_SAE))
    with torch.no_grad():
        sae.W_dec.mul_(torch.rand(D_SAE, 1) + 0.5)
    out = sae(x)
    (F.mse_loss(out.x_hat, x) + out.aux_loss).backward()
    sae.normalize_decoder()
    sae.remove_parallel_decoder_grad()
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(D_SAE))
    assert sae.W_dec.grad is not None
    parallel = (sae.W_dec.grad * sae.W_dec).sum(dim=1)
    torch.testing.assert_close(parallel, torch.zeros(D_SAE), atol=1e-6, rtol=0)


def check_bf16_autocast_trains_fp32_weights(make: Make, tmp_path: Path) -> None:
    sae, x = make(), data()
    sae.initialize_from_data(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = sae(x, torch.ones(D_SAE, dtype=torch.bool))
    loss = F.mse_loss(out.x_hat.float(), x) + out.aux_loss
    loss.backward()
    assert torch.isfinite(loss)
    for n, p in sae.named_parameters():
        assert p.grad is not None and p.grad.dtype == torch.float32, n
    assert sae.W_enc.grad is not None and sae.W_enc.grad.abs().sum() > 0


def check_construction_on_the_meta_device(make: Make, tmp_path: Path) -> None:
    with torch.device("meta"):
        sae = make()
    assert sae.W_enc.is_meta and sae.input_scale.is_meta


def check_identity_and_target_sparsity(make: Make, tmp_path: Path) -> None:
    """The row fields come from the SAE; a target sparsity maps to the knob or is refused."""
    sae = make()
    identity = sae.identity()
    assert set(identity) == {"architecture", "d_sae", "k", "sparsity"}
    assert identity["architecture"] == sae.architecture and identity["d_sae"] == D_SAE
    assert identity["sparsity"] == sae.target_sparsity
    assert sae.target_sparsity is None or 0 <= sae.target_sparsity < 1
    sae.sparsity_knob = sae.sparsity_knob
    assert sae.identity() == identity
    assert sae.eval_variants() and all(isinstance(v, SAE) for v in sae.eval_variants().values())
    try:
        args = type(sae).sparsity_init_args(0.75)
    except ValueError as err:
        assert "model.sparsities" in str(err)
        return
    assert make(**args).target_sparsity == 0.75


CHECKS: list[Callable[[Make, Path], None]] = [
    check_shapes_and_types,
    check_gradients_reach_the_encoder,
    check_save_load_round_trip,
    check_init_kwargs_rebuild_the_same_model,
    check_seeded_init_is_deterministic,
    check_decoder_norm_invariants,
    check_bf16_autocast_trains_fp32_weights,
    check_construction_on_the_meta_device,
    check_identity_and_target_sparsity,
]
