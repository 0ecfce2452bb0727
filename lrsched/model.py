"""The tutorial's CNN: conv 32 3x3 SAME, relu, conv 16 3x3 SAME, relu, flatten, dense 10, softmax.

Parameters are a small dict pytree, initialised exactly as ``jax.example_libraries.stax`` does
(the same keys split in the same order and the same initialisers), so ``init(PRNGKey(123), ...)``
gives the tutorial's starting weights bit for bit::

    {"conv1": {"w": (3, 3, 1, 32), "b": (1, 1, 1, 32)},
     "conv2": {"w": (3, 3, 32, 16), "b": (1, 1, 1, 16)},
     "dense": {"w": (28 * 28 * 16, 10), "b": (10,)}}

Layouts are stax's: images NHWC, kernels HWIO, and the flatten runs over (H, W, C) in that order.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

#: ``{"conv1": {"w": ..., "b": ...}, "conv2": {...}, "dense": {...}}``.
Params = dict[str, dict[str, jax.Array]]

LAYERS = ("conv1", "conv2", "dense")
_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def init(
    key: jax.Array,
    input_shape: Sequence[int] = (256, 28, 28, 1),
    conv_features: Sequence[int] = (32, 16),
    num_classes: int = 10,
) -> Params:
    """Initial parameters, as ``stax.serial(Conv, Relu, Conv, Relu, Flatten, Dense, Softmax)``.

    Args:
        key: a PRNG key (the tutorial's is ``jax.random.PRNGKey(123)``).
        input_shape: NHWC; the batch size does not matter.
        conv_features: output channels of the two convolutions.
        num_classes: outputs of the dense layer.
    """
    _, height, width, channels = (int(n) for n in input_shape)
    first, second = (int(n) for n in conv_features)
    flat = height * width * second
    shapes = ((3, 3, channels, first), (3, 3, first, second), (flat, num_classes))
    # stax: Conv weights glorot_normal(in_axis=2, out_axis=3), biases normal(1e-6); Dense weights
    # glorot_normal(), bias normal(1e-2). The unit draws run as one compiled function (eagerly,
    # their dozens of small ops each compile: seconds per new shape); the scaling runs eagerly,
    # op by op as the initialisers do, because inside one jit XLA would fold the scale into the
    # draws' own constants and round differently. So every bit is stax's.
    w_scales = (
        _glorot_stddev(9 * channels, 9 * first),
        _glorot_stddev(9 * first, 9 * second),
        _glorot_stddev(flat, num_classes),
    )
    b_scales = (1e-6, 1e-6, 1e-2)
    params: Params = {}
    for name, (w, b), w_scale, b_scale in zip(
        LAYERS, _draw(key, shapes), w_scales, b_scales, strict=True
    ):
        params[name] = {"w": w * w_scale, "b": b * jnp.array(b_scale, jnp.float32)}
    return params


def _glorot_stddev(fan_in: int, fan_out: int) -> jax.Array:
    # jax.nn.initializers.variance_scaling(1.0, "fan_avg", "truncated_normal"), eagerly.
    variance = jnp.array(1.0 / ((fan_in + fan_out) / 2), dtype=jnp.float32)
    return jnp.sqrt(variance) / jnp.array(0.87962566103423978, jnp.float32)


@partial(jax.jit, static_argnums=1)
def _draw(key: jax.Array, shapes: tuple[tuple[int, ...], ...]) -> list[tuple[jax.Array, jax.Array]]:
    # stax.serial splits its key once per layer (parameterless layers too: 7 in all); a layer
    # with parameters splits its key into (weights, bias). Layers 0, 2 and 5 have parameters.
    layer_keys = []
    for _ in range(7):
        key, layer_key = jax.random.split(key)
        layer_keys.append(layer_key)
    drawn = []
    for layer_key, shape in zip((layer_keys[0], layer_keys[2], layer_keys[5]), shapes, strict=True):
        k_w, k_b = jax.random.split(layer_key)
        bias_shape = (1, 1, 1, shape[3]) if len(shape) == 4 else (shape[1],)
        w = jax.random.truncated_normal(k_w, -2, 2, shape, jnp.float32)
        drawn.append((w, jax.random.normal(k_b, bias_shape, jnp.float32)))
    return drawn


def _conv(x: jax.Array, layer: dict[str, jax.Array]) -> jax.Array:
    y = lax.conv_general_dilated(x, layer["w"], (1, 1), "SAME", dimension_numbers=_DIMENSIONS)
    return y + layer["b"]


def logits(params: Params, images: jax.Array) -> jax.Array:
    """The dense layer's output (before the softmax) for NHWC float images."""
    h = jax.nn.relu(_conv(images, params["conv1"]))
    h = jax.nn.relu(_conv(h, params["conv2"]))
    h = h.reshape(h.shape[0], -1)
    return h @ params["dense"]["w"] + params["dense"]["b"][None, :]


def apply(params: Params, images: jax.Array) -> jax.Array:
    """Class probabilities (the network's softmax output) for NHWC float images."""
    return jax.nn.softmax(logits(params, images), axis=-1)


def cross_entropy(params: Params, images: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-example cross-entropy ``-log p[label]``, from the logits (the tutorial's loss, stably)."""
    log_p = jax.nn.log_softmax(logits(params, images), axis=-1)
    return -jnp.take_along_axis(log_p, labels[:, None], axis=1)[:, 0]


def param_count(params: Params) -> int:
    """The number of scalar parameters."""
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(params))


def save_params(path: Path, params: Params) -> Path:
    """Write `params` to `path` as ``.npz`` (keys ``conv1.w`` ...), atomically; return the path."""
    path = Path(path)
    arrays = {
        f"{layer}.{name}": np.asarray(value)
        for layer in LAYERS
        for name, value in params[layer].items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, allow_pickle=False, **arrays)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def load_params(path: Path) -> Params:
    """Read parameters written by :func:`save_params`.

    Raises:
        ValueError: the file lacks a layer's arrays, has extra ones, or their shapes do not chain.
    """
    with np.load(Path(path), allow_pickle=False) as npz:
        names = set(npz.files)
        expected = {f"{layer}.{name}" for layer in LAYERS for name in ("w", "b")}
        if names != expected:
            raise ValueError(
                f"{path} is not a saved lrsched CNN: it holds {sorted(names)}, "
                f"expected {sorted(expected)}"
            )
        params = {
            layer: {name: jnp.asarray(npz[f"{layer}.{name}"]) for name in ("w", "b")}
            for layer in LAYERS
        }
    c1, c2 = params["conv1"]["w"].shape[3], params["conv2"]["w"].shape[3]
    if params["conv2"]["w"].shape[2] != c1 or params["dense"]["w"].shape[0] % c2:
        raise ValueError(f"{path}: the layers' shapes do not fit together")
    return params
