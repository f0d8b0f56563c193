"""Fixtures of the SAE tests."""

from __future__ import annotations

import pytest

from saelight.sae.kernels import native_bf16


@pytest.fixture
def fp32_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No bf16 or int8 shortlist or bf16 AuxK pass, whatever this CPU has: fp32 end to end."""
    monkeypatch.setattr(native_bf16, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(native_bf16, "cpu_has_fast_int8", lambda: False)
