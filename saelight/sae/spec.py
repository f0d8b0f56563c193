"""An SAE spec (`model.saes` entry): the SAE class behind it, and building it at a sparsity.

LightningCLI turns `{class_path, init_args}` into a `functools.partial` whose positional
arguments hold the class (jsonargparse 4.5x: `partial(call_without_instantiate_context,
default_class_instantiator, cls, **init_args)`); a plain `partial(cls, ...)` or the class itself
work too. The grid needs the class before building anything, because the architecture, not the
grid, says how a target sparsity maps to its knob.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from saelight.sae.base import SAE


def spec_class(make: Any) -> type[SAE] | None:
    """The SAE class `make` builds, found through nested partials; None if it cannot be told."""
    if isinstance(make, type):
        return make if issubclass(make, SAE) else None
    if isinstance(make, functools.partial):
        for part in (make.func, *make.args):
            found = spec_class(part)
            if found is not None:
                return found
    return None


def build_at_sparsity(make: Callable[..., SAE], d_in: int, sparsity: float | None) -> SAE:
    """`make(d_in)`, or with the init args its class maps the target `sparsity` to.

    Raises:
        ValueError: the class has no knob for a target sparsity (naming the field to set
            instead), or `make` hides which class it builds.
    """
    if sparsity is None:
        return make(d_in)
    cls = spec_class(make)
    if cls is None:
        raise ValueError(
            "model.sparsities needs each model.saes entry to name its SAE class (class_path + "
            f"init_args, or functools.partial of an SAE class); got {make!r}"
        )
    return make(d_in, **cls.sparsity_init_args(sparsity))
