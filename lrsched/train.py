"""Training: the tutorial's CNN under any schedule, one jitted step per batch.

``train(config)`` evaluates the schedule on the host at every step the run will use (refusing a
NaN, infinite or negative rate before anything else), then feeds each batch's rate to the compiled
step as an argument: what a metrics record reports is exactly what was applied, and a new schedule
never recompiles anything. The step compiles once per (optimizer, loss reduction, conv widths,
batch shape) and is kept for the life of the process; the partial last batch is padded and masked,
so it runs the same executable (padded rows carry zero weight in the loss and its gradient).

On the CPU the step splits its batch into micro-batches of about 32 examples, unrolled inside the
one compiled function, and sums their gradients: XLA then runs two at a time on a 2-core machine
and each one's activations stay in cache. Measured (BENCHMARKS.md): 0.10 s a batch of 256 against
0.14 s for one jitted step on the whole batch; a ``lax.scan`` over the micro-batches instead of
unrolling them is about 19x slower, and one over whole steps takes 7 s a batch. On other backends
the batch runs whole.

How a run ends:

- it completes, or a callback asks to stop (``on_epoch`` or ``on_progress`` returns True): a
  :class:`~lrsched.metrics.TrainResult` comes back, ``status`` saying which;
- it fails after it started (the loss is not finite, or it passed ``config.max_seconds``): a
  :class:`TrainingError` is raised (``NonFiniteLossError`` or ``DeadlineExceededError``) that says
  what happened and what to do, and carries the finished epochs' records and the parameters at the
  end of the last good epoch;
- it cannot start: :class:`~lrsched.config.ScheduleRangeError` for the schedule, a
  :class:`~lrsched.data.DataError` for the data.

Errors (raised by :func:`train` once it has started)::

    TrainingError            .metrics, .params, .steps_done, .steps_total
    ├── NonFiniteLossError   a batch's training loss (or the validation loss) is NaN or infinite
    └── DeadlineExceededError  the run passed config.max_seconds
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lrsched import model
from lrsched.config import (
    Adam,
    AdamW,
    Momentum,
    Nesterov,
    OptimizerSpec,
    RmsProp,
    Sgd,
    TrainConfig,
    schedule_rates,
    train_size,
)
from lrsched.data import IMAGE_SHAPE, NUM_CLASSES, Dataset, load_dataset
from lrsched.metrics import EpochMetrics, TrainResult, TrainStatus
from lrsched.model import Params

#: Called with each finished epoch's record; returning True (a bool) stops the run after it.
OnEpoch = Callable[[EpochMetrics], "bool | None"]
#: Called with (steps done, steps total) at least every `progress_interval` seconds, also before
#: the first step and at the end of each epoch; returning True (a bool) stops the run there.
OnProgress = Callable[[int, int], "bool | None"]

_T = TypeVar("_T")

#: Micro-batch size the CPU step aims for, and the most micro-batches it unrolls.
CPU_MICRO_BATCH = 32
MAX_MICRO_BATCHES = 16


class TrainingError(RuntimeError):
    """A run that failed after it started; the finished epochs are kept on the error."""

    def __init__(
        self,
        message: str,
        *,
        metrics: Sequence[EpochMetrics],
        params: Params,
        steps_done: int,
        steps_total: int,
    ) -> None:
        super().__init__(message)
        self.metrics = tuple(metrics)
        self.params = params
        self.steps_done = steps_done
        self.steps_total = steps_total


class NonFiniteLossError(TrainingError):
    """The loss became NaN or infinite: the run diverged."""


class DeadlineExceededError(TrainingError):
    """The run passed its ``max_seconds``."""


# --------------------------------------------------------------------------------------------------
# The compiled steps


def micro_batches(batch_size: int, backend: str | None = None) -> tuple[int, int]:
    """(number of micro-batches, their size) for one batch on `backend` (default: JAX's).

    The padded batch the step runs is their product, at least `batch_size`.
    """
    backend = backend or jax.default_backend()
    if backend != "cpu":
        return 1, batch_size
    count = max(1, min(MAX_MICRO_BATCHES, round(batch_size / CPU_MICRO_BATCH)))
    return count, math.ceil(batch_size / count)


def make_optimizer(spec: OptimizerSpec, learning_rate: Any) -> optax.GradientTransformation:
    """The optax transformation for `spec` at `learning_rate` (a float or a traced scalar)."""
    if isinstance(spec, Sgd):
        return optax.sgd(learning_rate, momentum=spec.momentum, nesterov=spec.nesterov)
    if isinstance(spec, Momentum):
        return optax.sgd(learning_rate, momentum=spec.momentum)
    if isinstance(spec, Nesterov):
        return optax.sgd(learning_rate, momentum=spec.momentum, nesterov=True)
    if isinstance(spec, Adam):
        return optax.adam(
            learning_rate, b1=spec.b1, b2=spec.b2, eps=spec.eps, eps_root=spec.eps_root,
            nesterov=spec.nesterov,
        )  # fmt: skip
    if isinstance(spec, AdamW):
        return optax.adamw(
            learning_rate, b1=spec.b1, b2=spec.b2, eps=spec.eps, eps_root=spec.eps_root,
            weight_decay=spec.weight_decay, nesterov=spec.nesterov,
        )  # fmt: skip
    if isinstance(spec, RmsProp):
        return optax.rmsprop(
            learning_rate, decay=spec.decay, eps=spec.eps, initial_scale=spec.initial_scale,
            eps_in_sqrt=spec.eps_in_sqrt, centered=spec.centered, momentum=spec.momentum,
            nesterov=spec.nesterov, bias_correction=spec.bias_correction,
        )  # fmt: skip
    raise TypeError(f"unknown optimizer spec {spec!r}")


@dataclass(frozen=True)
class StepShape:
    """What a compiled step depends on (never the schedule, never the data's size)."""

    optimizer: OptimizerSpec
    loss_reduction: str
    conv_features: tuple[int, int]
    image_shape: tuple[int, int]
    chunks: int
    chunk: int

    @property
    def batch(self) -> int:
        return self.chunks * self.chunk


def _chunk_loss(params: Params, images: jax.Array, labels: jax.Array, mask: jax.Array) -> jax.Array:
    x = images.astype(jnp.float32)[..., None] / 255.0
    return jnp.sum(model.cross_entropy(params, x, labels) * mask)


def _train_step_fn(shape: StepShape) -> Callable[..., Any]:
    value_and_grad = jax.value_and_grad(_chunk_loss)

    def step(
        params: Params,
        opt_state: Any,
        images: jax.Array,
        labels: jax.Array,
        mask: jax.Array,
        lr: jax.Array,
    ) -> tuple[Params, Any, jax.Array]:
        loss: jax.Array | None = None
        grads: Params | None = None
        for c in range(shape.chunks):  # unrolled: XLA overlaps the micro-batches (see module doc)
            part = slice(c * shape.chunk, (c + 1) * shape.chunk)
            part_loss, part_grads = value_and_grad(params, images[part], labels[part], mask[part])
            loss = part_loss if loss is None else loss + part_loss
            grads = part_grads if grads is None else jax.tree.map(jnp.add, grads, part_grads)
        assert loss is not None and grads is not None
        if shape.loss_reduction == "mean":
            count = jnp.maximum(jnp.sum(mask), 1.0)
            loss = loss / count
            grads = jax.tree.map(lambda g: g / count, grads)
        updates, opt_state = make_optimizer(shape.optimizer, lr).update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def _eval_step_fn(shape: StepShape) -> Callable[..., Any]:
    def step(
        params: Params, images: jax.Array, labels: jax.Array, mask: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        loss = jnp.zeros((), jnp.float32)
        correct = jnp.zeros((), jnp.float32)
        for c in range(shape.chunks):
            part = slice(c * shape.chunk, (c + 1) * shape.chunk)
            x = images[part].astype(jnp.float32)[..., None] / 255.0
            scores = model.logits(params, x)
            log_p = jax.nn.log_softmax(scores, axis=-1)
            picked = -jnp.take_along_axis(log_p, labels[part][:, None], axis=1)[:, 0]
            loss = loss + jnp.sum(picked * mask[part])
            hits = (jnp.argmax(scores, axis=-1) == labels[part]).astype(jnp.float32)
            correct = correct + jnp.sum(hits * mask[part])
        return loss, correct

    return step


_COMPILED: OrderedDict[tuple[str, StepShape], Any] = OrderedDict()
_COMPILED_LOCK = threading.Lock()
_MAX_COMPILED = 32


def _compiled(kind: str, shape: StepShape, args: tuple[Any, ...], wait: Callable[[], None]) -> Any:
    """The compiled `kind` step for `shape`, compiling it on a thread while `wait()` ticks."""
    key = (kind, shape)
    with _COMPILED_LOCK:
        if key in _COMPILED:
            _COMPILED.move_to_end(key)
            return _COMPILED[key]
    fn = _train_step_fn(shape) if kind == "train" else _eval_step_fn(shape)

    def work() -> Any:
        compiled = jax.jit(fn).lower(*args).compile()
        # Cached here, so a compile whose run was stopped meanwhile still serves the next run.
        with _COMPILED_LOCK:
            _COMPILED[key] = compiled
            while len(_COMPILED) > _MAX_COMPILED:
                _COMPILED.popitem(last=False)
        return compiled

    return _beating(work, wait)


def _beating(work: Callable[[], _T], wait: Callable[[], None]) -> _T:
    """Run `work()` on a thread (XLA releases the GIL while compiling) while `wait()` ticks."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = work()
        except BaseException as error:  # handed to the caller's thread
            result["error"] = error

    thread = threading.Thread(target=target, name="lrsched-compile", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.05)
        wait()
    if "error" in result:
        raise result["error"]
    value: _T = result["value"]
    return value


# --------------------------------------------------------------------------------------------------
# The loop


class _Stop(Exception):
    """A callback asked to stop (internal control flow)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Run:
    """The state of one run: its clock, its callbacks, its progress."""

    def __init__(
        self,
        config: TrainConfig,
        on_progress: OnProgress | None,
        interval: float,
        started: float,
    ) -> None:
        self.config = config
        self.on_progress = on_progress
        self.interval = interval
        self.started = started
        self.deadline = None if config.max_seconds is None else started + config.max_seconds
        self.last_beat = -math.inf
        self.steps_done = 0
        self.steps_total = 0
        self.metrics: list[EpochMetrics] = []
        #: The latest parameters, and those at the end of the last finished epoch.
        self.params: Params = {}
        self.good_params: Params = {}

    def fail(self, error: type[TrainingError], message: str) -> TrainingError:
        return error(
            message,
            metrics=self.metrics,
            params=self.good_params,
            steps_done=self.steps_done,
            steps_total=self.steps_total,
        )

    def beat(self, *, force: bool = False) -> None:
        """Check the deadline; call on_progress if `interval` has passed (or `force`)."""
        now = time.monotonic()
        if self.deadline is not None and now > self.deadline:
            raise self.fail(
                DeadlineExceededError,
                f"the run passed its deadline of max_seconds={self.config.max_seconds:g} after "
                f"{self.steps_done} of {self.steps_total} steps ({len(self.metrics)} epochs "
                "finished); allow more time, or train for fewer epochs or on fewer examples",
            )
        if self.on_progress is None or not (force or now - self.last_beat >= self.interval):
            return
        self.last_beat = now
        if _asks_to_stop(self.on_progress(self.steps_done, self.steps_total)):
            raise _Stop(
                f"on_progress asked to stop after {self.steps_done} of {self.steps_total} steps"
            )


def _asks_to_stop(answer: object) -> bool:
    # Only a boolean True stops: a callback that happens to return something else (a lambda
    # around list.append or dict.setdefault) must not end a run by accident.
    return isinstance(answer, bool | np.bool_) and bool(answer)


def _batch(
    images: np.ndarray,
    labels: np.ndarray,
    ids: np.ndarray | slice,
    size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One batch padded to `size` rows, with its 0/1 mask."""
    chosen_images, chosen_labels = images[ids], labels[ids]
    n = chosen_images.shape[0]
    mask = np.zeros(size, dtype=np.float32)
    mask[:n] = 1.0
    if n == size:
        return chosen_images, chosen_labels, mask
    padded_images = np.zeros((size, *images.shape[1:]), dtype=images.dtype)
    padded_labels = np.zeros(size, dtype=labels.dtype)
    padded_images[:n], padded_labels[:n] = chosen_images, chosen_labels
    return padded_images, padded_labels, mask


def train(
    config: TrainConfig | dict[str, Any],
    *,
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    download: bool = True,
    data: Dataset | None = None,
    on_epoch: OnEpoch | None = None,
    on_progress: OnProgress | None = None,
    progress_interval: float = 1.0,
    progress_bar: bool = False,
) -> TrainResult:
    """Train the CNN as `config` says and return one metrics record per epoch.

    Args:
        config: the run (a ``TrainConfig`` or its JSON-like dict).
        data_dir: read the dataset's files from this directory (see :mod:`lrsched.fetch`).
        cache_dir: where downloaded datasets are kept (default ``~/.cache/lrsched/datasets``).
        download: whether missing dataset files may be downloaded.
        data: train on this dataset instead of loading ``config.dataset`` (max_train_examples and
            max_eval_examples still apply).
        on_epoch: called with each epoch's record; return True to stop after it (only a bool
            True stops; None, False or anything else goes on).
        on_progress: called with ``(steps_done, steps_total)`` before the first step, at least
            every `progress_interval` seconds while training, evaluating, compiling or
            downloading, and at the end of each epoch; return True to stop there. Jobs use it
            as their heartbeat.
        progress_interval: seconds between on_progress calls.
        progress_bar: show a progress bar while downloading.

    Returns:
        The result: records of finished epochs, final parameters, and whether the run completed
        or was stopped by a callback (then ``reason`` says which and when).

    Raises:
        ScheduleRangeError: the schedule is NaN, infinite or negative at a step the run uses
            (before anything else happens).
        DataError: the dataset could not be had (what to put where), or its files are corrupt.
        NonFiniteLossError: the loss became NaN or infinite (the run diverged).
        DeadlineExceededError: the run passed ``config.max_seconds``.
    """
    started = time.monotonic()
    if not isinstance(config, TrainConfig):
        config = TrainConfig.model_validate(config)
    if data is not None:
        data = data.truncated(config.max_train_examples, config.max_eval_examples)
    n_train = train_size(config) if data is None else data.train_images.shape[0]
    rates = schedule_rates(config, n_train)  # the pre-check: refuses a bad rate before any work

    run = _Run(config, on_progress, progress_interval, started)
    batches = math.ceil(n_train / config.batch_size)
    run.steps_total = config.epochs * batches
    image_shape = IMAGE_SHAPE if data is None else data.image_shape
    classes = NUM_CLASSES if data is None else data.num_classes
    try:
        run.beat(force=True)
        run.params = run.good_params = _beating(  # compiles the first time: seconds
            lambda: model.init(
                jax.random.PRNGKey(config.seed),
                (config.batch_size, *image_shape, 1),
                config.conv_features,
                classes,
            ),
            run.beat,
        )
        if data is None:
            data = load_dataset(
                config.dataset,
                data_dir=data_dir,
                cache_dir=cache_dir,
                download=download,
                max_train_examples=config.max_train_examples,
                max_eval_examples=config.max_eval_examples,
                progress_bar=progress_bar,
                heartbeat=run.beat,
            )
        if data.train_images.shape[0] != n_train:
            raise ValueError(
                f"{data.name} has {data.train_images.shape[0]} training examples, "
                f"expected {n_train}"
            )
        return _loop(run, data, rates, batches, on_epoch)
    except _Stop as stop:
        return TrainResult(
            config=config,
            metrics=tuple(run.metrics),
            params=run.params,
            status=TrainStatus.STOPPED,
            reason=stop.reason,
            steps_done=run.steps_done,
            steps_total=run.steps_total,
            seconds=time.monotonic() - started,
        )


def _loop(
    run: _Run,
    data: Dataset,
    rates: np.ndarray,
    batches: int,
    on_epoch: OnEpoch | None,
) -> TrainResult:
    config = run.config
    chunks, chunk = micro_batches(config.batch_size)
    shape = StepShape(
        config.optimizer,
        config.loss_reduction,
        config.conv_features,
        data.image_shape,
        chunks,
        chunk,
    )
    size = shape.batch
    params = run.params
    opt_state = make_optimizer(config.optimizer, 0.0).init(params)
    example = _batch(data.train_images, data.train_labels, slice(0, size), size)
    train_step = _compiled("train", shape, (params, opt_state, *example, np.float32(0)), run.beat)
    eval_step = _compiled("eval", shape, (params, *example), run.beat)
    n_train = data.train_images.shape[0]
    timer = _StepTimer(run.interval)
    for epoch in range(config.epochs):
        epoch_started = time.monotonic()
        order = (
            np.random.default_rng([config.seed, epoch]).permutation(n_train)
            if config.shuffle
            else None
        )
        losses = np.empty(batches, dtype=np.float64)
        pending: tuple[int, jax.Array] | None = None
        for index in range(batches + 1):
            if index < batches:  # dispatch this batch, then settle the previous one meanwhile
                rows = slice(index * config.batch_size, (index + 1) * config.batch_size)
                ids = rows if order is None else order[rows]
                images, labels, mask = _batch(data.train_images, data.train_labels, ids, size)
                lr = rates[_rate_index(config, epoch, index, batches)]
                params, opt_state, loss = train_step(params, opt_state, images, labels, mask, lr)
                run.params = params
            if pending is not None:
                done, value = pending
                timer.wait(run, value)
                losses[done] = float(value)
                if not math.isfinite(losses[done]):
                    step = epoch * batches + done
                    rate = float(rates[_rate_index(config, epoch, done, batches)])
                    raise run.fail(
                        NonFiniteLossError,
                        f"the training loss became {losses[done]} at epoch {epoch}, batch {done} "
                        f"(step {step}) with learning rate {rate:g}: the run diverged; lower the "
                        "learning rate, or use loss_reduction='mean'",
                    )
                run.steps_done += 1
                run.beat()
            pending = (index, loss) if index < batches else None

        val_loss, val_accuracy = _evaluate(run, timer, eval_step, params, data, size)
        if not math.isfinite(val_loss):
            raise run.fail(
                NonFiniteLossError,
                f"the validation loss became {val_loss} after epoch {epoch}: the run diverged; "
                "lower the learning rate, or use loss_reduction='mean'",
            )
        record = EpochMetrics(
            epoch=epoch,
            train_loss=float(losses.mean()),
            val_loss=val_loss,
            val_accuracy=val_accuracy,
            lr=float(rates[_rate_index(config, epoch, batches - 1, batches)]),
            seconds=time.monotonic() - epoch_started,
        )
        run.metrics.append(record)
        run.good_params = params
        run.beat(force=True)
        if on_epoch is not None and _asks_to_stop(on_epoch(record)):
            raise _Stop(f"on_epoch asked to stop after epoch {epoch}")
    return TrainResult(
        config=config,
        metrics=tuple(run.metrics),
        params=params,
        status=TrainStatus.COMPLETED,
        reason=None,
        steps_done=run.steps_done,
        steps_total=run.steps_total,
        seconds=time.monotonic() - run.started,
    )


class _StepTimer:
    """Waits for a step's result, beating while it waits when steps take a good part of the
    progress interval (big batches on a CPU); otherwise blocks, which costs nothing."""

    def __init__(self, interval: float) -> None:
        self.threshold = interval / 4
        self.slow = False
        self.last = time.monotonic()

    def wait(self, run: _Run, value: jax.Array) -> None:
        if self.slow:
            while not value.is_ready():  # type: ignore[attr-defined]
                time.sleep(0.005)
                run.beat()
        value.block_until_ready()
        now = time.monotonic()
        self.slow = now - self.last > self.threshold
        self.last = now


def _rate_index(config: TrainConfig, epoch: int, index: int, batches: int) -> int:
    """Where in the schedule's rates the `index`-th batch of `epoch` finds its rate."""
    return epoch if config.schedule_unit == "epoch" else epoch * batches + index


def _evaluate(
    run: _Run, timer: _StepTimer, eval_step: Any, params: Params, data: Dataset, size: int
) -> tuple[float, float]:
    """(val_loss, val_accuracy): train_loss's statistic over the eval set, and the hit rate."""
    batch_size = run.config.batch_size
    n_eval = data.eval_images.shape[0]
    losses: list[float] = []
    correct = 0.0
    pending: tuple[int, tuple[jax.Array, jax.Array]] | None = None
    starts = list(range(0, n_eval, batch_size))
    for position in range(len(starts) + 1):
        if position < len(starts):
            rows = slice(starts[position], starts[position] + batch_size)
            images, labels, mask = _batch(data.eval_images, data.eval_labels, rows, size)
            output = eval_step(params, images, labels, mask)
        if pending is not None:
            count, (loss, hits) = pending
            timer.wait(run, loss)
            mean = run.config.loss_reduction == "mean"
            losses.append(float(loss) / count if mean else float(loss))
            correct += float(hits)
            run.beat()
        pending = (int(mask.sum()), output) if position < len(starts) else None
    if not losses:
        return 0.0, 0.0
    return float(np.mean(losses)), correct / n_eval
