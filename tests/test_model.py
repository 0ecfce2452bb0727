"""The CNN: stax's initialisation bit for bit, the tutorial's forward pass and loss, save/load."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.example_libraries import stax

from lrsched import model


def tutorial_network() -> tuple[object, object]:
    """The tutorial's ``stax.serial`` CNN, as its cell [4] writes it."""
    return stax.serial(
        stax.Conv(32, (3, 3), padding="SAME"),
        stax.Relu,
        stax.Conv(16, (3, 3), padding="SAME"),
        stax.Relu,
        stax.Flatten,
        stax.Dense(10),
        stax.Softmax,
    )


def test_init_is_stax_init_bit_for_bit() -> None:
    conv_init, _ = tutorial_network()
    _, reference = conv_init(jax.random.PRNGKey(123), (256, 28, 28, 1))
    params = model.init(jax.random.PRNGKey(123))
    for layer, (w, b) in zip(model.LAYERS, (reference[0], reference[2], reference[5]), strict=True):
        np.testing.assert_array_equal(params[layer]["w"], w)
        np.testing.assert_array_equal(params[layer]["b"], b)
    assert reference[1] == reference[3] == reference[4] == reference[6] == ()


def test_forward_pass_and_loss_are_the_tutorials() -> None:
    conv_init, conv_apply = tutorial_network()
    _, weights = conv_init(jax.random.PRNGKey(123), (256, 28, 28, 1))
    params = model.init(jax.random.PRNGKey(123))
    x = jax.random.uniform(jax.random.PRNGKey(1), (8, 28, 28, 1))
    y = jnp.arange(8) % 10
    with jax.numpy_rank_promotion("allow"):  # stax's Dense adds a (10,) bias to (N, 10)
        expected = conv_apply(weights, x)
        tutorial_loss = -jnp.sum(jax.nn.one_hot(y, 10) * jnp.log(expected))
    np.testing.assert_allclose(model.apply(params, x), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(jnp.sum(model.cross_entropy(params, x, y)), tutorial_loss, rtol=1e-5)


def test_shapes_and_parameter_count() -> None:
    params = model.init(jax.random.PRNGKey(0))
    shapes = {layer: {k: v.shape for k, v in params[layer].items()} for layer in model.LAYERS}
    assert shapes == {
        "conv1": {"w": (3, 3, 1, 32), "b": (1, 1, 1, 32)},
        "conv2": {"w": (3, 3, 32, 16), "b": (1, 1, 1, 16)},
        "dense": {"w": (12544, 10), "b": (10,)},
    }
    assert model.param_count(params) == 288 + 32 + 4608 + 16 + 125_440 + 10


def test_conv_widths_are_configurable() -> None:
    params = model.init(jax.random.PRNGKey(0), (1, 28, 28, 1), conv_features=(8, 4))
    assert params["conv2"]["w"].shape == (3, 3, 8, 4)
    assert params["dense"]["w"].shape == (28 * 28 * 4, 10)
    assert model.apply(params, jnp.zeros((3, 28, 28, 1))).shape == (3, 10)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    params = model.init(jax.random.PRNGKey(5), conv_features=(4, 2))
    path = model.save_params(tmp_path / "deep" / "final.npz", params)
    assert sorted(p.name for p in path.parent.iterdir()) == ["final.npz"]
    loaded = model.load_params(path)
    for layer in model.LAYERS:
        for name in ("w", "b"):
            np.testing.assert_array_equal(loaded[layer][name], params[layer][name])


def test_load_refuses_other_files(tmp_path: Path) -> None:
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(ValueError, match="not a saved lrsched CNN"):
        model.load_params(tmp_path / "other.npz")
