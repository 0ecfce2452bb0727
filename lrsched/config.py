"""The training config (``TrainConfig``), the optimizer specs, and the schedule's pre-check.

Everything here is importable without loading data or touching JAX's devices: the service validates
a job with it before queueing (``check_schedule``), and the worker re-validates the same JSON.

Counting (DESIGN §2.3): epochs and steps count from 0. With ``schedule_unit="epoch"`` every batch of
epoch ``e`` uses ``schedule(e)``; with ``"step"`` the k-th batch of the whole run uses
``schedule(k)``. An epoch is ``ceil(n_train / batch_size)`` batches, the last one partial.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from lrsched.data import DATASET_SIZES, DatasetName
from lrsched.evaluate import evaluate
from lrsched.specs import ScheduleSpec

#: A finite number in [0, 1): a decay or momentum coefficient.
Coefficient = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]
#: A finite, non-negative number.
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
#: A positive, finite number.
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Optimizer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Sgd(_Optimizer):
    """``optax.sgd``: plain gradient descent by default (the tutorial's ``optimizers.sgd``)."""

    kind: Literal["sgd"] = "sgd"
    momentum: Coefficient | None = None
    nesterov: bool = False


class Momentum(_Optimizer):
    """``optax.sgd(momentum=...)``: heavy-ball momentum."""

    kind: Literal["momentum"] = "momentum"
    momentum: Coefficient = 0.9


class Nesterov(_Optimizer):
    """``optax.sgd(momentum=..., nesterov=True)``: Nesterov momentum."""

    kind: Literal["nesterov"] = "nesterov"
    momentum: Coefficient = 0.9


class Adam(_Optimizer):
    """``optax.adam``."""

    kind: Literal["adam"] = "adam"
    b1: Coefficient = 0.9
    b2: Coefficient = 0.999
    eps: NonNegative = 1e-8
    eps_root: NonNegative = 0.0
    nesterov: bool = False


class AdamW(_Optimizer):
    """``optax.adamw`` (decoupled weight decay, applied to every parameter)."""

    kind: Literal["adamw"] = "adamw"
    b1: Coefficient = 0.9
    b2: Coefficient = 0.999
    eps: NonNegative = 1e-8
    eps_root: NonNegative = 0.0
    weight_decay: NonNegative = 1e-4
    nesterov: bool = False


class RmsProp(_Optimizer):
    """``optax.rmsprop``."""

    kind: Literal["rmsprop"] = "rmsprop"
    decay: Coefficient = 0.9
    eps: NonNegative = 1e-8
    initial_scale: NonNegative = 0.0
    eps_in_sqrt: bool = True
    centered: bool = False
    momentum: Coefficient | None = None
    nesterov: bool = False
    bias_correction: bool = False


#: Any optimizer spec; pydantic picks the model from ``kind``. The learning rate is the schedule's.
OptimizerSpec = Annotated[
    Union[Sgd, Momentum, Nesterov, Adam, AdamW, RmsProp],  # noqa: UP007 (discriminated union)
    Field(discriminator="kind"),
]

MAX_EPOCHS = 1_000
MAX_BATCH_SIZE = 16_384
MAX_CONV_FEATURES = 1_024


class TrainConfig(BaseModel):
    """One training run. Every field but ``schedule`` has a default; the defaults are the tutorial's
    experiment: Fashion-MNIST, the CNN conv 32 -> conv 16 -> dense 10, SGD, cross-entropy summed
    over each batch, batch 256, 10 epochs, no shuffling, ``PRNGKey(123)``.

    Example::

        TrainConfig(schedule={"kind": "exponential_decay", "step_size": 1e-4,
                              "decay_steps": 10, "decay_rate": 0.9})
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schedule: ScheduleSpec = Field(description="The learning-rate schedule (any schedule spec).")
    schedule_unit: Literal["epoch", "step"] = Field(
        "epoch",
        description="What the schedule counts: epochs (from 0) or batches of the whole run (from 0).",
    )
    epochs: int = Field(10, ge=1, le=MAX_EPOCHS, description="Passes over the training set.")
    batch_size: int = Field(
        256, ge=1, le=MAX_BATCH_SIZE, description="Examples per batch; the last batch is partial."
    )
    dataset: DatasetName = Field(
        "fashion_mnist", description="The dataset to train and evaluate on."
    )
    optimizer: OptimizerSpec = Field(
        default_factory=Sgd, description="The optax optimizer; its learning rate is the schedule."
    )
    loss_reduction: Literal["sum", "mean"] = Field(
        "sum", description="Cross-entropy summed over each batch (the tutorial's) or averaged."
    )
    shuffle: bool = Field(
        False, description="Shuffle the training set each epoch (a permutation drawn from seed)."
    )
    seed: int = Field(123, ge=0, le=2**32 - 1, description="PRNG seed of the initial weights.")
    max_train_examples: int | None = Field(
        None, ge=1, description="Train on only the first this many examples (quick runs)."
    )
    max_eval_examples: int | None = Field(
        None, ge=1, description="Evaluate on only the first this many examples (quick runs)."
    )
    conv_features: tuple[
        Annotated[int, Field(ge=1, le=MAX_CONV_FEATURES)],
        Annotated[int, Field(ge=1, le=MAX_CONV_FEATURES)],
    ] = Field((32, 16), description="Output channels of the two convolutions.")
    max_seconds: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="A deadline for the run, counted from the start of training; past it the run "
        "fails with a reason saying so.",
    )


class ScheduleRangeError(ValueError):
    """The schedule gives a learning rate that training cannot use (non-finite or negative)."""

    def __init__(self, step: int, value: float, message: str) -> None:
        super().__init__(message)
        self.step = step
        self.value = value

    def __repr__(self) -> str:
        return f"ScheduleRangeError(step={self.step}, value={self.value!r})"


def train_size(config: TrainConfig) -> int:
    """How many training examples the run uses (the dataset's, capped by max_train_examples)."""
    n = DATASET_SIZES[config.dataset].train
    return n if config.max_train_examples is None else min(n, config.max_train_examples)


def eval_size(config: TrainConfig) -> int:
    """How many validation examples the run uses (capped by max_eval_examples)."""
    n = DATASET_SIZES[config.dataset].eval
    return n if config.max_eval_examples is None else min(n, config.max_eval_examples)


def batches_per_epoch(config: TrainConfig, n_train: int | None = None) -> int:
    """``ceil(n_train / batch_size)``: the batches of one epoch, the last one partial."""
    n = train_size(config) if n_train is None else n_train
    return math.ceil(n / config.batch_size)


def schedule_steps(config: TrainConfig, n_train: int | None = None) -> np.ndarray:
    """Every step value the run hands to the schedule, in order of first use (int64).

    ``0 .. epochs - 1`` for the epoch unit; ``0 .. epochs * batches_per_epoch - 1`` for the step
    unit. `n_train` overrides the dataset's size (when training on data passed in directly).
    """
    return np.arange(_step_count(config, n_train), dtype=np.int64)


def _step_count(config: TrainConfig, n_train: int | None) -> int:
    if config.schedule_unit == "epoch":
        return config.epochs
    return config.epochs * batches_per_epoch(config, n_train)


def schedule_rates(config: TrainConfig, n_train: int | None = None) -> np.ndarray:
    """The learning rate at every step of :func:`schedule_steps` (float32), checked.

    Raises:
        ScheduleRangeError: at the first step whose rate is NaN, infinite or negative.
    """
    steps = schedule_steps(config, n_train)
    rates = evaluate(config.schedule, steps)
    _refuse_bad_rates(config, n_train, steps, rates)
    return rates


def check_schedule(config: TrainConfig) -> None:
    """Refuse a schedule that is NaN, infinite or negative at any step the run would use.

    Evaluates in chunks, so memory stays bounded however many steps the run has (a service
    calls this for every submitted job).

    Raises:
        ScheduleRangeError: naming the first such step and its value.
    """
    total = _step_count(config, None)
    for begin in range(0, total, _CHECK_CHUNK):
        steps = np.arange(begin, min(begin + _CHECK_CHUNK, total), dtype=np.int64)
        _refuse_bad_rates(config, None, steps, evaluate(config.schedule, steps))


#: Steps evaluated at once by :func:`check_schedule` (about 12 MB of work arrays).
_CHECK_CHUNK = 1 << 20


def _refuse_bad_rates(
    config: TrainConfig, n_train: int | None, steps: np.ndarray, rates: np.ndarray
) -> None:
    bad = ~np.isfinite(rates) | (rates < 0)
    if not bad.any():
        return
    index = int(np.argmax(bad))
    step, value = int(steps[index]), float(rates[index])
    problem = "is negative" if np.isfinite(value) else "is not finite"
    if config.schedule_unit == "epoch":
        where = f"step {step} (epoch {step})"
        used = f"steps 0..{config.epochs - 1}, one per epoch"
    else:
        per_epoch = batches_per_epoch(config, n_train)
        where = f"step {step} (epoch {step // per_epoch}, batch {step % per_epoch})"
        used = f"steps 0..{_step_count(config, n_train) - 1}, one per batch"
    raise ScheduleRangeError(
        step,
        value,
        f"the schedule's learning rate at {where} is {value!r}, which {problem}; training "
        f"needs a finite, non-negative rate at every step it uses ({used}): change the "
        "schedule's parameters",
    )
