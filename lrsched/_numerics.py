"""Division that XLA cannot turn into multiplication by a reciprocal.

XLA:CPU rewrites ``x / broadcast(d)`` as ``x * broadcast(1/d)``, also when ``d`` is a traced value,
so ``1 - T/T`` comes out as -1.49e-8 and a fractional power of it as NaN: the references' bug under
``jit``. Hiding the broadcast divisor behind an optimization barrier keeps a true, correctly
rounded division: the value the reference libraries compute eagerly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike


def opaque(value: ArrayLike) -> Array:
    """`value` unchanged, but hidden from XLA's algebraic rewrites and constant folding."""
    hidden: Array = jax.lax.optimization_barrier(value)  # type: ignore[no-untyped-call]
    return hidden


def true_divide(numerator: ArrayLike, denominator: ArrayLike) -> Array:
    """``numerator / denominator``, elementwise, correctly rounded under ``jit`` too."""
    shape = jnp.broadcast_shapes(jnp.shape(numerator), jnp.shape(denominator))
    return jnp.broadcast_to(numerator, shape) / opaque(jnp.broadcast_to(denominator, shape))


def floor_divide(numerator: ArrayLike, denominator: ArrayLike) -> Array:
    """``numerator // denominator`` with the same protection."""
    shape = jnp.broadcast_shapes(jnp.shape(numerator), jnp.shape(denominator))
    return jnp.floor_divide(
        jnp.broadcast_to(numerator, shape), opaque(jnp.broadcast_to(denominator, shape))
    )
