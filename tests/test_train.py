"""Training on small synthetic data: it learns, it counts exactly, it stops, fails and refuses well.

Every run here uses batch 64 on a few hundred examples, so the compiled step is shared and each
run takes a fraction of a second after the first compile.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from pydantic import ValidationError

from lrsched import model
from lrsched.config import (
    DATASET_SIZES,
    ScheduleRangeError,
    TrainConfig,
    batches_per_epoch,
    check_schedule,
    schedule_steps,
)
from lrsched.data import Dataset, synthetic
from lrsched.evaluate import evaluate
from lrsched.metrics import EpochMetrics, TrainStatus
from lrsched.train import (
    _COMPILED,
    DeadlineExceededError,
    NonFiniteLossError,
    StepShape,
    micro_batches,
    train,
)

DECAY = {"kind": "exponential_decay", "step_size": 3e-4, "decay_steps": 2, "decay_rate": 0.5}


@pytest.fixture(scope="module")
def data() -> Dataset:
    return synthetic(seed=0, n_train=2048, n_eval=256)


def config(**fields: Any) -> TrainConfig:
    base: dict[str, Any] = {
        "schedule": DECAY,
        "dataset": "synthetic",
        "epochs": 2,
        "batch_size": 64,
        "max_train_examples": 500,  # 8 batches an epoch, the last one of 52
        "max_eval_examples": 200,
    }
    return TrainConfig.model_validate({**base, **fields})


# --------------------------------------------------------------------------------------------------
# The config and its counting


def test_defaults_are_the_tutorials_experiment() -> None:
    cfg = TrainConfig(schedule={"kind": "constant", "step_size": 1e-4})
    assert (cfg.epochs, cfg.batch_size, cfg.dataset, cfg.seed) == (10, 256, "fashion_mnist", 123)
    assert (cfg.optimizer.kind, cfg.loss_reduction, cfg.shuffle) == ("sgd", "sum", False)
    assert (cfg.schedule_unit, cfg.conv_features) == ("epoch", (32, 16))
    assert cfg.optimizer.momentum is None
    assert batches_per_epoch(cfg) == 235  # 234 full batches of 256 and one of 96
    assert schedule_steps(cfg).tolist() == list(range(10))
    step_cfg = cfg.model_copy(update={"schedule_unit": "step"})
    assert schedule_steps(step_cfg).tolist() == list(range(2350))
    small = cfg.model_copy(update={"schedule_unit": "step", "max_train_examples": 1000})
    assert schedule_steps(small).shape == (40,)  # ceil(1000 / 256) = 4 batches an epoch
    assert DATASET_SIZES["fashion_mnist"] == (60_000, 10_000)


@pytest.mark.parametrize(
    ("fields", "location", "error_type"),
    [
        ({"epochs": 0}, ("epochs",), "greater_than_equal"),
        ({"epochs": 1001}, ("epochs",), "less_than_equal"),
        ({"batch_size": 0}, ("batch_size",), "greater_than_equal"),
        ({"dataset": "cifar10"}, ("dataset",), "literal_error"),
        ({"schedule_unit": "batch"}, ("schedule_unit",), "literal_error"),
        ({"loss_reduction": "max"}, ("loss_reduction",), "literal_error"),
        ({"optimizer": {"kind": "lion"}}, ("optimizer",), "union_tag_invalid"),
        ({"optimizer": {"kind": "adam", "b1": 1.0}}, ("optimizer", "adam", "b1"), "less_than"),
        ({"optimizer": {"kind": "sgd", "lr": 0.1}}, ("optimizer", "sgd", "lr"), "extra_forbidden"),
        ({"max_train_examples": 0}, ("max_train_examples",), "greater_than_equal"),
        ({"conv_features": [32]}, ("conv_features", 1), "missing"),
        ({"conv_features": [32, 0]}, ("conv_features", 1), "greater_than_equal"),
        ({"max_seconds": 0}, ("max_seconds",), "greater_than"),
        ({"seed": -1}, ("seed",), "greater_than_equal"),
        ({"learning_rate": 0.1}, ("learning_rate",), "extra_forbidden"),
        ({"schedule": {"kind": "constant"}}, ("schedule", "constant", "step_size"), "missing"),
    ],
    ids=repr,
)
def test_bad_fields_get_a_located_error(
    fields: dict[str, Any], location: tuple[Any, ...], error_type: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        config(**fields)
    errors = caught.value.errors()
    assert [(e["loc"], e["type"]) for e in errors][:1] == [(location, error_type)], errors
    assert errors[0]["msg"]


def test_every_optimizer_kind_validates_and_round_trips() -> None:
    for optimizer in (
        {"kind": "sgd"},
        {"kind": "sgd", "momentum": 0.5, "nesterov": True},
        {"kind": "momentum", "momentum": 0.9},
        {"kind": "nesterov"},
        {"kind": "adam", "b1": 0.8, "eps": 1e-7},
        {"kind": "adamw", "weight_decay": 0.01},
        {"kind": "rmsprop", "decay": 0.95, "centered": True},
    ):
        cfg = config(optimizer=optimizer)
        assert TrainConfig.model_validate_json(cfg.model_dump_json()) == cfg


def test_a_negative_rate_is_refused_naming_the_step() -> None:
    linear = {
        "kind": "linear_schedule",
        "init_value": 1e-3,
        "end_value": -1e-3,
        "transition_steps": 10,
    }
    cfg = config(schedule=linear, schedule_unit="step")  # 16 steps; the rate is negative from 6 on
    with pytest.raises(ScheduleRangeError, match=r"at step 6 \(epoch 0, batch 6\)") as caught:
        check_schedule(cfg)
    assert caught.value.step == 6 and caught.value.value < 0
    calls: list[Any] = []
    with pytest.raises(ScheduleRangeError):
        train(cfg, on_progress=lambda *a: calls.append(a), on_epoch=calls.append)
    assert calls == []  # refused before anything started


def test_a_non_finite_rate_is_refused_before_training() -> None:
    growing = {"kind": "exponential_decay", "step_size": 1e-4, "decay_steps": 1, "decay_rate": 1e30}
    cfg = config(schedule=growing, epochs=5)
    with pytest.raises(
        ScheduleRangeError, match=r"epoch 2\) is inf, which is not finite"
    ) as caught:
        check_schedule(cfg)
    assert caught.value.step == 2 and math.isinf(caught.value.value)


def test_check_schedule_finds_a_late_bad_step_in_a_huge_run() -> None:
    # 1000 epochs at batch 1: 60 million steps, checked in chunks (bounded memory); the first bad
    # step lies deep inside a later chunk and must still be named exactly.
    late = {"kind": "expression", "expr": "where(step < 5000003, 0.1, -0.1)", "params": {}}
    cfg = TrainConfig.model_validate(
        {"schedule": late, "schedule_unit": "step", "epochs": 1000, "batch_size": 1,
         "dataset": "fashion_mnist"}
    )
    with pytest.raises(ScheduleRangeError, match=r"at step 5000003 \(epoch 83, batch 20003\)"):
        check_schedule(cfg)


# --------------------------------------------------------------------------------------------------
# Training


def test_learns_synthetic_data_with_finite_metrics(data: Dataset) -> None:
    cfg = config(
        schedule={
            "kind": "exponential_decay",
            "step_size": 3e-4,
            "decay_steps": 10,
            "decay_rate": 0.5,
        },
        epochs=3,
        max_train_examples=2048,
    )
    seen: list[EpochMetrics] = []
    result = train(cfg, data=data, on_epoch=seen.append)
    assert result.status is TrainStatus.COMPLETED and result.reason is None
    assert list(result.metrics) == seen and [m.epoch for m in seen] == [0, 1, 2]
    for record in seen:
        values = (
            record.train_loss,
            record.val_loss,
            record.val_accuracy,
            record.lr,
            record.seconds,
        )
        assert all(math.isfinite(v) for v in values)
    assert seen[-1].val_accuracy > 0.6, seen  # chance is 0.1
    assert seen[-1].train_loss < seen[0].train_loss
    assert result.steps_done == result.steps_total == 3 * 32


@pytest.mark.parametrize("unit", ["epoch", "step"])
def test_recorded_lr_is_the_schedule_at_the_counted_step(data: Dataset, unit: str) -> None:
    cfg = config(schedule_unit=unit, epochs=3)
    result = train(cfg, data=data)
    per_epoch = 8
    counted = [e if unit == "epoch" else (e + 1) * per_epoch - 1 for e in range(3)]
    expected = evaluate(cfg.schedule, counted)
    assert [m.lr for m in result.metrics] == [float(v) for v in expected]
    # The schedule decays at every step, so counting one off would show.
    neighbours = evaluate(cfg.schedule, [s + 1 for s in counted])
    assert all(a != b for a, b in zip(expected, neighbours, strict=True))


def test_applied_rates_are_exactly_the_schedules(data: Dataset) -> None:
    # values[sum(step > boundaries)]: step 0 learns at 1e-3, every later step at 0. Two batches:
    # the result must be the start plus exactly one SGD update, at the rate of step 0.
    schedule = {"kind": "piecewise_constant", "boundaries": [0], "values": [1e-3, 0.0]}
    cfg = config(schedule=schedule, schedule_unit="step", epochs=1, max_train_examples=128)
    result = train(cfg, data=data)
    start = model.init(jax.random.PRNGKey(cfg.seed), (64, 28, 28, 1))
    x = jnp.asarray(data.train_images[:64], jnp.float32)[..., None] / 255.0
    y = jnp.asarray(data.train_labels[:64])
    grads = jax.grad(lambda p: jnp.sum(model.cross_entropy(p, x, y)))(start)
    expected = jax.tree.map(lambda p, g: p - 1e-3 * g, start, grads)
    for layer in model.LAYERS:
        for name in ("w", "b"):
            np.testing.assert_allclose(
                result.params[layer][name], expected[layer][name], rtol=1e-4, atol=1e-7
            )
    assert not np.allclose(result.params["dense"]["w"], start["dense"]["w"])


def test_the_partial_batch_compiles_nothing_new(data: Dataset) -> None:
    cfg = config(epochs=2)  # 500 examples: 7 batches of 64 and one of 52
    train(cfg, data=data)
    chunks, chunk = micro_batches(64)
    keys = [
        k for k in _COMPILED if k[1].batch == chunks * chunk and k[1].optimizer == cfg.optimizer
    ]
    assert sorted(kind for kind, shape in keys if shape.loss_reduction == "sum") == [
        "eval",
        "train",
    ]
    assert isinstance(keys[0][1], StepShape)


def test_same_config_same_metrics(data: Dataset) -> None:
    cfg = config(shuffle=True, epochs=2)
    first, second = train(cfg, data=data), train(cfg, data=data)
    strip = [m.model_dump(exclude={"seconds"}) for m in first.metrics]
    assert strip == [m.model_dump(exclude={"seconds"}) for m in second.metrics]
    unshuffled = train(cfg.model_copy(update={"shuffle": False}), data=data)
    assert unshuffled.metrics[0].train_loss != first.metrics[0].train_loss


@pytest.mark.parametrize(
    "optimizer",
    [
        {"kind": "momentum"},
        {"kind": "nesterov", "momentum": 0.5},
        {"kind": "adam"},
        {"kind": "adamw", "weight_decay": 0.1},
        {"kind": "rmsprop", "momentum": 0.5},
    ],
    ids=lambda o: o["kind"],
)
def test_every_optimizer_trains(data: Dataset, optimizer: dict[str, Any]) -> None:
    cfg = config(
        optimizer=optimizer,
        schedule={"kind": "constant", "step_size": 1e-5},
        loss_reduction="mean" if optimizer["kind"] != "momentum" else "sum",
        epochs=1,
        max_train_examples=128,
    )
    result = train(cfg, data=data)
    assert result.status is TrainStatus.COMPLETED
    assert math.isfinite(result.metrics[0].train_loss)
    if cfg.loss_reduction == "mean":  # a per-example loss: about log(10) at the start
        assert 1.0 < result.metrics[0].train_loss < 4.0


def test_optax_state_matches_the_spec(data: Dataset) -> None:
    cfg = config(optimizer={"kind": "adamw", "b1": 0.5}, epochs=1, max_train_examples=64)
    result = train(cfg, data=data)
    # One adamw step from the start, computed with optax directly at the schedule's step-0 rate.
    start = model.init(jax.random.PRNGKey(cfg.seed), (64, 28, 28, 1))
    x = jnp.asarray(data.train_images[:64], jnp.float32)[..., None] / 255.0
    y = jnp.asarray(data.train_labels[:64])
    grads = jax.grad(lambda p: jnp.sum(model.cross_entropy(p, x, y)))(start)
    tx = optax.adamw(float(evaluate(cfg.schedule, [0])[0]), b1=0.5, weight_decay=1e-4)
    updates, _ = tx.update(grads, tx.init(start), start)
    expected = optax.apply_updates(start, updates)
    np.testing.assert_allclose(
        result.params["conv1"]["w"], expected["conv1"]["w"], rtol=1e-4, atol=1e-7
    )


# --------------------------------------------------------------------------------------------------
# Stopping, failing, progress, saving


def test_on_epoch_can_stop_the_run(data: Dataset) -> None:
    result = train(config(epochs=5), data=data, on_epoch=lambda record: record.epoch == 1)
    assert result.status is TrainStatus.STOPPED
    assert [m.epoch for m in result.metrics] == [0, 1]
    assert result.reason == "on_epoch asked to stop after epoch 1"
    assert result.steps_done == 16 and result.steps_total == 40


def test_only_a_boolean_true_stops(data: Dataset) -> None:
    result = train(
        config(epochs=2),
        data=data,
        on_epoch=lambda record: record.epoch + 1,  # truthy, but not True
        on_progress=lambda done, total: time.monotonic(),
    )
    assert result.status is TrainStatus.COMPLETED and len(result.metrics) == 2


def test_on_progress_can_stop_mid_epoch(data: Dataset) -> None:
    calls: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> bool:
        calls.append((done, total))
        return done >= 11

    result = train(config(epochs=3), data=data, on_progress=progress, progress_interval=0.0)
    assert calls[0] == (0, 24)  # before the first step
    assert result.status is TrainStatus.STOPPED and result.steps_done == 11
    assert [m.epoch for m in result.metrics] == [0]  # the finished epoch is kept
    assert result.reason == "on_progress asked to stop after 11 of 24 steps"


def test_a_stop_before_the_first_step_does_no_work(data: Dataset) -> None:
    result = train(config(), data=data, on_progress=lambda done, total: True)
    assert result.status is TrainStatus.STOPPED and result.steps_done == 0
    assert result.metrics == () and result.params == {}


def test_on_progress_beats_often_while_training(data: Dataset) -> None:
    stamps: list[float] = []
    train(
        config(epochs=3, conv_features=(32, 16)),
        data=data,
        on_progress=lambda done, total: stamps.append(time.monotonic()) and None,
        progress_interval=0.2,
    )
    gaps = np.diff(stamps)
    assert len(stamps) >= 4 and gaps.max() < 2.0, gaps


def test_a_nan_loss_fails_clearly_and_keeps_finished_epochs(data: Dataset) -> None:
    # A sane rate for epoch 0, then one that blows the weights up.
    schedule = {"kind": "piecewise_constant", "boundaries": [0], "values": [1e-4, 1e4]}
    with pytest.raises(
        NonFiniteLossError, match="the run diverged; lower the learning rate"
    ) as caught:
        train(config(schedule=schedule, epochs=3), data=data)
    error = caught.value
    assert [m.epoch for m in error.metrics] == [0]
    assert "at epoch 1" in str(error) and "learning rate 10000" in str(error)
    assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(error.params))


def test_the_deadline_stops_the_run(data: Dataset) -> None:
    with pytest.raises(DeadlineExceededError, match=r"deadline of max_seconds=1\.5") as caught:
        train(config(epochs=1000, max_seconds=1.5), data=data)
    assert 0 < caught.value.steps_done < caught.value.steps_total == 8000


def test_final_params_save_and_load(tmp_path: Path, data: Dataset) -> None:
    result = train(config(epochs=1), data=data)
    path = result.save_params(tmp_path / "final.npz")
    loaded = model.load_params(path)
    x = jnp.asarray(data.eval_images[:16], jnp.float32)[..., None] / 255.0
    np.testing.assert_array_equal(model.apply(loaded, x), model.apply(result.params, x))


def test_accepts_a_plain_dict_and_loads_by_name() -> None:
    cfg = config(epochs=1, max_train_examples=64, max_eval_examples=64).model_dump(mode="json")
    result = train(cfg)  # loads the synthetic dataset itself (the prefix it needs)
    assert result.metrics[0].epoch == 0 and result.steps_total == 1
