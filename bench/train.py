"""Benchmark training: the tutorial's loop against ours, side by side in one run, same machine.

Same model (the tutorial's CNN from ``PRNGKey(123)``), same data (the synthetic set, with
Fashion-MNIST's shape: 28x28x1, 60,000 + 10,000), SGD at a constant 1e-4, loss summed over each
batch of 256: the tutorial's section 1.

- ``tutorial``: the tutorial's ``TrainModelInBatches`` as written: ``jax.example_libraries`` stax
  and optimizers, ``value_and_grad`` un-jitted once per batch, the validation set in one
  ``conv_apply``.
- ``ours``: ``lrsched.train`` itself (host batching, dispatch, the sync per step, the metrics); the
  time per step is read from its ``on_progress`` callback, evaluation is its own pass.
- ``plain``: one jitted optax step on the whole batch (no micro-batches): what jit alone gives.
- ``scan`` (``--scan``): the same plain steps under one ``lax.scan`` (very slow on a CPU).

The machine is shared and its speed drifts, so the timing runs in one process and interleaves the
variants: ``--rounds`` rounds, each timing ``--block`` batches of every variant in a rotating
order; the median per-batch time of each counts. Peak memory comes from a separate, fresh process
per variant (``ru_maxrss``: 3 batches and the full evaluation). Before timing, it checks that ours
computes what the tutorial computes (same start, same batches: the same mean loss).

    python bench/train.py                  # about 4 minutes on 2 cores
    python bench/train.py --rounds 2 --block 3 --no-memory   # about a minute
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import value_and_grad
from jax.example_libraries import optimizers, stax

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lrsched import model  # noqa: E402
from lrsched.config import TrainConfig  # noqa: E402
from lrsched.data import Dataset, synthetic  # noqa: E402
from lrsched.train import micro_batches, train  # noqa: E402

BATCH = 256
EPOCH_BATCHES = 235  # ceil(60,000 / 256)
CONSTANT = {"kind": "constant", "step_size": 1e-4}


class Tutorial:
    """The tutorial's cells [4]-[9] on `data`, as its code is written."""

    def __init__(self, data: Dataset) -> None:
        self.x_train = (
            jnp.array(data.train_images, dtype=jnp.float32).reshape(-1, 28, 28, 1) / 255.0
        )
        self.y_train = jnp.array(data.train_labels, dtype=jnp.float32)
        self.x_val = jnp.array(data.eval_images, dtype=jnp.float32).reshape(-1, 28, 28, 1) / 255.0
        self.y_val = np.asarray(data.eval_labels)
        self.conv_init, self.conv_apply = stax.serial(
            stax.Conv(32, (3, 3), padding="SAME"),
            stax.Relu,
            stax.Conv(16, (3, 3), padding="SAME"),
            stax.Relu,
            stax.Flatten,
            stax.Dense(10),
            stax.Softmax,
        )
        self.restart()

    def restart(self) -> None:
        weights = self.conv_init(jax.random.PRNGKey(123), (BATCH, 28, 28, 1))[1]
        self.opt_init, self.opt_update, self.opt_get_weights = optimizers.sgd(jnp.array(1 / 1e4))
        self.opt_state = self.opt_init(weights)

    def loss(self, weights: Any, x_batch: Any, y_batch: Any) -> Any:
        preds = self.conv_apply(weights, x_batch)
        one_hot_actual = jax.nn.one_hot(y_batch, num_classes=10)
        log_preds = jnp.log(preds)
        return -jnp.sum(one_hot_actual * log_preds)

    def batches(self, first: int, count: int) -> list[float]:
        """Run batches first .. first+count-1 as the tutorial's loop body does; their losses."""
        losses = []
        # The tutorial's loop over `jnp.arange(n // batch_size + 1)`, its test for the last
        # (partial) batch included; the timed batches are all full ones.
        batches = jnp.arange(first, first + count + 1)
        for batch in batches[:-1]:
            if batch != batches[-1]:
                start, end = int(batch * BATCH), int(batch * BATCH + BATCH)
            else:
                start, end = int(batch * BATCH), None
            x_batch, y_batch = self.x_train[start:end], self.y_train[start:end]
            loss, gradients = value_and_grad(self.loss)(
                self.opt_get_weights(self.opt_state), x_batch, y_batch
            )
            self.opt_state = self.opt_update(1, gradients, self.opt_state)
            losses.append(loss)
        float(jnp.array(losses).mean())  # the tutorial prints it (a sync)
        jax.block_until_ready(self.opt_state)
        return [float(v) for v in losses]

    def epoch(self) -> float:
        """One whole epoch of ``TrainModelInBatches`` (235 batches, the last of 96, then the
        validation accuracy); its seconds."""
        began = time.perf_counter()
        x, y = self.x_train, self.y_train
        batches = jnp.arange((x.shape[0] // BATCH) + 1)
        losses = []
        for batch in batches:
            if batch != batches[-1]:
                start, end = int(batch * BATCH), int(batch * BATCH + BATCH)
            else:
                start, end = int(batch * BATCH), None
            x_batch, y_batch = x[start:end], y[start:end]
            loss, gradients = value_and_grad(self.loss)(
                self.opt_get_weights(self.opt_state), x_batch, y_batch
            )
            self.opt_state = self.opt_update(1, gradients, self.opt_state)
            losses.append(loss)
        float(jnp.array(losses).mean())
        self.evaluate()
        return time.perf_counter() - began

    def evaluate(self) -> float:
        predictions = self.conv_apply(self.opt_get_weights(self.opt_state), self.x_val)
        return float(np.mean(self.y_val == np.asarray(jnp.argmax(predictions, axis=1))))


def ours(data: Dataset, batches: int, eval_examples: int) -> dict[str, float]:
    """``lrsched.train`` over `batches` + 1 batches: seconds a step (steps 1..), eval seconds."""
    stamps: dict[int, float] = {}
    ends: list[float] = []

    def progress(done: int, total: int) -> None:
        stamps.setdefault(done, time.perf_counter())
        ends.append(time.perf_counter())

    config = TrainConfig(
        schedule=CONSTANT,
        dataset="synthetic",
        epochs=1,
        max_train_examples=(batches + 1) * BATCH,
        max_eval_examples=eval_examples,
    )
    result = train(config, data=data, on_progress=progress, progress_interval=0.0)
    return {
        "per_batch": (stamps[batches + 1] - stamps[1]) / batches,
        "eval": ends[-1] - stamps[batches + 1],
        "mean_loss": result.metrics[0].train_loss,
        "accuracy": result.metrics[0].val_accuracy,
    }


class Plain:
    """A plain jitted optax SGD step on the whole batch; or, with `scan`, steps under lax.scan."""

    def __init__(self, data: Dataset, scan: bool) -> None:
        self.images = np.asarray(data.train_images, np.float32).reshape(-1, BATCH, 28, 28, 1) / 255
        self.labels = np.asarray(data.train_labels).reshape(-1, BATCH)
        self.tx = optax.sgd(1e-4)
        params = model.init(jax.random.PRNGKey(123))
        self.carry = (params, self.tx.init(params))
        self.step = jax.jit(self._step)
        self.scan = scan

    def _step(self, carry: Any, batch: Any) -> Any:
        params, state = carry
        loss, grads = jax.value_and_grad(
            lambda p: jnp.sum(model.cross_entropy(p, batch[0], batch[1]))
        )(params)
        updates, state = self.tx.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), loss

    def batches(self, first: int, count: int) -> None:
        if self.scan:
            run = jax.jit(lambda c, xs: jax.lax.scan(self._step, c, xs))
            xs = (self.images[first : first + count], self.labels[first : first + count])
            self.carry = jax.block_until_ready(run(self.carry, xs))[0]
            return
        for k in range(first, first + count):
            self.carry, loss = self.step(self.carry, (self.images[k], self.labels[k]))
            float(loss)


def timed(run: Callable[[], object]) -> float:
    began = time.perf_counter()
    run()
    return time.perf_counter() - began


def peak_memory(variant: str, eval_examples: int) -> float:
    """Peak RSS (MiB) of a fresh process running 3 batches and the evaluation of `variant`."""
    env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    command = [
        sys.executable,
        __file__,
        "--memory-child",
        variant,
        "--eval-examples",
        str(eval_examples),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def memory_child(variant: str, eval_examples: int) -> None:
    data = synthetic(0, n_train=4 * BATCH, n_eval=eval_examples)
    if variant == "tutorial":
        tutorial = Tutorial(data)
        tutorial.batches(0, 4)
        tutorial.evaluate()
    elif variant == "ours":
        ours(data, 3, eval_examples)
    else:
        Plain(data, scan=variant == "scan").batches(0, 4 if variant == "plain" else 2)
    # VmHWM, not ru_maxrss: the latter keeps the parent's high-water mark across fork and exec.
    status = Path("/proc/self/status").read_text()
    print(int(next(x for x in status.splitlines() if x.startswith("VmHWM:")).split()[1]) / 1024)


def full_epochs() -> dict[str, float]:
    """One whole epoch of the tutorial's loop and of ours on the full synthetic set, warm."""
    data = synthetic(0)
    tutorial = Tutorial(data)
    tutorial.batches(0, 1)
    partial = tutorial.x_train[:96], tutorial.y_train[:96]  # warm the last batch's shapes too
    jax.block_until_ready(
        value_and_grad(tutorial.loss)(tutorial.opt_get_weights(tutorial.opt_state), *partial)
    )
    tutorial.restart()
    seconds = {"tutorial": tutorial.epoch()}
    del tutorial
    config = TrainConfig(schedule=CONSTANT, dataset="synthetic", epochs=1)
    seconds["ours"] = train(config, data=data).metrics[0].seconds
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6, help="rounds of interleaved timing")
    parser.add_argument("--block", type=int, default=5, help="batches of each variant per round")
    parser.add_argument("--eval-examples", type=int, default=10_000)
    parser.add_argument("--scan", action="store_true", help="also time lax.scan (3 batches)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    parser.add_argument(
        "--full-epoch", action="store_true", help="also time one whole epoch of each (60,000)"
    )
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.eval_examples)
        return

    n_batches = args.block + 1
    data = synthetic(0, n_train=max(n_batches, 4) * BATCH, n_eval=args.eval_examples)

    # Exactness: same start, same batches: the same losses.
    tutorial = Tutorial(data)
    reference = tutorial.batches(0, n_batches)
    check = ours(data, args.block, args.eval_examples)
    tutorial_accuracy = tutorial.evaluate()

    plain = Plain(data, scan=False)
    plain.batches(0, 1)  # compile
    ours(data, 1, 256)  # compile (and warm) ours
    variants: dict[str, Callable[[], float]] = {
        "tutorial": lambda: (
            (tutorial.restart(), timed(lambda: tutorial.batches(1, args.block)))[1] / args.block
        ),
        "ours": lambda: ours(data, args.block, 256)["per_batch"],
        "plain": lambda: timed(lambda: plain.batches(1, args.block)) / args.block,
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    evals: dict[str, list[float]] = {"tutorial": [], "ours": []}
    names = list(variants)
    for round_ in range(args.rounds):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            times[name].append(variants[name]())
        evals["tutorial"].append(timed(tutorial.evaluate))
        evals["ours"].append(ours(data, 1, args.eval_examples)["eval"])
        line = "  ".join(f"{n} {times[n][-1]:.3f}" for n in names)
        print(f"round {round_ + 1}: s/batch {line}", flush=True)
    if args.scan:
        scan = Plain(data, scan=True)
        scan.batches(0, 1)
        times["scan"] = [timed(lambda: scan.batches(1, 3)) / 3]
        names.append("scan")

    full: dict[str, float] = {}
    if args.full_epoch:
        full = full_epochs()
    memory = {n: 0.0 if args.no_memory else peak_memory(n, args.eval_examples) for n in names}
    per_batch = {n: statistics.median(times[n]) for n in names}
    eval_seconds = {n: statistics.median(v) for n, v in evals.items()}
    scale = 10_000 / args.eval_examples

    def epoch(name: str) -> float:
        return per_batch[name] * EPOCH_BATCHES + eval_seconds.get(name, 0.0) * scale

    chunks, chunk = micro_batches(BATCH)
    labels = {
        "tutorial": "the tutorial's loop (stax, un-jitted `value_and_grad` per batch)",
        "ours": f"ours (`lrsched.train`: jitted step, {chunks} micro-batches of {chunk})",
        "plain": "a plain jitted step on the whole batch",
        "scan": "`lax.scan` over plain jitted steps",
    }
    print()
    print(
        f"jax {jax.__version__}, {platform.machine()}, {os.cpu_count()} CPUs, backend "
        f"{jax.default_backend()}; batch {BATCH}; {args.rounds} interleaved rounds of "
        f"{args.block} batches each (median); evaluation of {args.eval_examples}"
    )
    print()
    print(
        "| loop | s / batch (median, min-max) | s / epoch: 235 batches + eval | "
        "vs the tutorial, per epoch | peak RSS |"
    )
    print("|---|---|---|---|---|")
    for name in names:
        spread = f"{min(times[name]):.3f}-{max(times[name]):.3f}"
        rss = "-" if args.no_memory else f"{memory[name]:.0f} MiB"
        print(
            f"| {labels[name]} | {per_batch[name]:.3f} ({spread}) | {epoch(name):.1f} | "
            f"{epoch('tutorial') / epoch(name):.2f}x | {rss} |"
        )
    print()
    drift = abs(check["mean_loss"] - float(np.mean(reference))) / float(np.mean(reference))
    print(
        f"same computation: mean loss over the first {n_batches} batches, tutorial "
        f"{np.mean(reference):.4f}, ours {check['mean_loss']:.4f} (relative difference "
        f"{drift:.1e}); validation accuracy after them {tutorial_accuracy:.4f} and "
        f"{check['accuracy']:.4f}"
    )
    if full:
        print(
            f"one whole epoch (60,000 + evaluation of 10,000), measured: tutorial "
            f"{full['tutorial']:.1f} s, ours {full['ours']:.1f} s: "
            f"{full['tutorial'] / full['ours']:.2f}x"
        )
    print(
        f"evaluation of {args.eval_examples}: tutorial {eval_seconds['tutorial']:.2f} s, ours "
        f"{eval_seconds['ours']:.2f} s; per batch, ours is "
        f"{per_batch['tutorial'] / per_batch['ours']:.2f}x the tutorial's speed"
    )


if __name__ == "__main__":
    main()
