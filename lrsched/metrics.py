"""What a training run reports: one :class:`EpochMetrics` per epoch, and the :class:`TrainResult`.

Counting (DESIGN §2.3): ``epoch`` counts from 0; ``train_loss`` is the mean over the epoch's batches
of each batch's loss (summed or averaged over its examples as the config says, the partial last
batch counted as one batch: the tutorial's ``jnp.array(losses).mean()``), each taken before that
batch's update; ``val_loss`` is the same statistic over the validation set, in batches of the same
size, with the parameters at the end of the epoch; ``val_accuracy`` is the fraction of validation
examples whose most probable class is the label; ``lr`` is the rate applied at the epoch's last
batch; ``seconds`` is the epoch's wall time, training and evaluation together.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from lrsched.config import TrainConfig
from lrsched.model import Params, save_params


class EpochMetrics(BaseModel):
    """One epoch's record (all numbers finite: a run whose loss is not finite fails instead)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    epoch: int = Field(ge=0, description="The epoch's index, from 0.")
    train_loss: float = Field(allow_inf_nan=False, description="Mean over the epoch's batches.")
    val_loss: float = Field(allow_inf_nan=False, description="The same statistic on validation.")
    val_accuracy: float = Field(ge=0, le=1, description="Fraction of validation examples right.")
    lr: float = Field(ge=0, allow_inf_nan=False, description="The rate at the epoch's last batch.")
    seconds: float = Field(ge=0, allow_inf_nan=False, description="Wall time of the epoch.")


class TrainStatus(StrEnum):
    """How a run that returned ended (runs that fail raise :class:`lrsched.train.TrainingError`)."""

    #: Every epoch ran.
    COMPLETED = "completed"
    #: A callback asked to stop; the epochs finished before it are kept.
    STOPPED = "stopped"


@dataclass(frozen=True, eq=False)
class TrainResult:
    """The outcome of :func:`lrsched.train.train`."""

    config: TrainConfig
    #: One record per finished epoch.
    metrics: tuple[EpochMetrics, ...]
    #: The parameters after the last step run (empty when stopped before the first step).
    params: Params
    status: TrainStatus
    #: Why the run stopped early (None when it completed).
    reason: str | None
    #: Optimizer steps done, of the run's total.
    steps_done: int
    steps_total: int
    #: Wall time of the whole call, data loading and compiling included.
    seconds: float

    def save_params(self, path: Path) -> Path:
        """Write the final parameters to `path` as ``.npz`` (see :func:`lrsched.model.load_params`)."""
        return save_params(path, self.params)
