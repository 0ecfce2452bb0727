"""lrsched: learning-rate schedules for JAX, exact to the libraries they come from.

The package root is the public API: schedule specs and their evaluation, the training library
(config, data, model, ``train``), and the job wire types shared by the service and its workers.
``lrsched.specs`` holds one model per kind.
"""

from lrsched.catalog import kinds_catalog as kinds_catalog
from lrsched.catalog import published_limits as published_limits
from lrsched.compile import compile_schedule as compile_schedule
from lrsched.config import Adam as Adam
from lrsched.config import AdamW as AdamW
from lrsched.config import Momentum as Momentum
from lrsched.config import Nesterov as Nesterov
from lrsched.config import OptimizerSpec as OptimizerSpec
from lrsched.config import RmsProp as RmsProp
from lrsched.config import ScheduleRangeError as ScheduleRangeError
from lrsched.config import Sgd as Sgd
from lrsched.config import TrainConfig as TrainConfig
from lrsched.config import batches_per_epoch as batches_per_epoch
from lrsched.config import check_schedule as check_schedule
from lrsched.config import schedule_rates as schedule_rates
from lrsched.config import schedule_steps as schedule_steps
from lrsched.data import DATASET_SIZES as DATASET_SIZES
from lrsched.data import ChecksumError as ChecksumError
from lrsched.data import DataError as DataError
from lrsched.data import Dataset as Dataset
from lrsched.data import DatasetUnavailableError as DatasetUnavailableError
from lrsched.data import IdxFormatError as IdxFormatError
from lrsched.data import load_dataset as load_dataset
from lrsched.data import synthetic as synthetic
from lrsched.evaluate import StepRangeError as StepRangeError
from lrsched.evaluate import evaluate as evaluate
from lrsched.evaluate import first_nonfinite as first_nonfinite
from lrsched.evaluate import is_compiled as is_compiled
from lrsched.evaluate import step_range as step_range
from lrsched.expression import ExpressionError as ExpressionError
from lrsched.jobs import DEFAULT_JOB_MAX_SECONDS as DEFAULT_JOB_MAX_SECONDS
from lrsched.jobs import DEFAULT_REDIS_URL as DEFAULT_REDIS_URL
from lrsched.jobs import DEFAULT_UNACKED_RESTORE_INTERVAL as DEFAULT_UNACKED_RESTORE_INTERVAL
from lrsched.jobs import DEFAULT_VISIBILITY_TIMEOUT as DEFAULT_VISIBILITY_TIMEOUT
from lrsched.jobs import JOB_QUEUE as JOB_QUEUE
from lrsched.jobs import MAX_ERROR_CHARS as MAX_ERROR_CHARS
from lrsched.jobs import REFUSAL_HEADER as REFUSAL_HEADER
from lrsched.jobs import TRAIN_TASK as TRAIN_TASK
from lrsched.jobs import VISIBILITY_MARGIN as VISIBILITY_MARGIN
from lrsched.jobs import WORKER_MISCONFIGURED as WORKER_MISCONFIGURED
from lrsched.jobs import Claim as Claim
from lrsched.jobs import ClaimRequest as ClaimRequest
from lrsched.jobs import EpochReport as EpochReport
from lrsched.jobs import FinalStatus as FinalStatus
from lrsched.jobs import Job as Job
from lrsched.jobs import JobPage as JobPage
from lrsched.jobs import JobProgress as JobProgress
from lrsched.jobs import JobStatus as JobStatus
from lrsched.jobs import JobSummary as JobSummary
from lrsched.jobs import ProgressReport as ProgressReport
from lrsched.jobs import ReportReply as ReportReply
from lrsched.jobs import ResultReport as ResultReport
from lrsched.jobs import WorkerHeartbeat as WorkerHeartbeat
from lrsched.jobs import broker_transport_options as broker_transport_options
from lrsched.jobs import check_visibility_timeout as check_visibility_timeout
from lrsched.jobs import shorten as shorten
from lrsched.limits import MAX_STEP as MAX_STEP
from lrsched.limits import MAX_STEPS_PER_REQUEST as MAX_STEPS_PER_REQUEST
from lrsched.metrics import EpochMetrics as EpochMetrics
from lrsched.metrics import TrainResult as TrainResult
from lrsched.metrics import TrainStatus as TrainStatus
from lrsched.model import load_params as load_params
from lrsched.model import save_params as save_params
from lrsched.specs import SPEC_KINDS as SPEC_KINDS
from lrsched.specs import ScheduleSpec as ScheduleSpec
from lrsched.specs import SpecModel as SpecModel
from lrsched.specs import parse_spec as parse_spec
from lrsched.train import DeadlineExceededError as DeadlineExceededError
from lrsched.train import NonFiniteLossError as NonFiniteLossError
from lrsched.train import TrainingError as TrainingError
from lrsched.train import train as train

__all__ = [
    "DATASET_SIZES",
    "DEFAULT_JOB_MAX_SECONDS",
    "DEFAULT_REDIS_URL",
    "DEFAULT_UNACKED_RESTORE_INTERVAL",
    "DEFAULT_VISIBILITY_TIMEOUT",
    "JOB_QUEUE",
    "MAX_ERROR_CHARS",
    "MAX_STEP",
    "MAX_STEPS_PER_REQUEST",
    "REFUSAL_HEADER",
    "SPEC_KINDS",
    "TRAIN_TASK",
    "VISIBILITY_MARGIN",
    "WORKER_MISCONFIGURED",
    "Adam",
    "AdamW",
    "ChecksumError",
    "Claim",
    "ClaimRequest",
    "DataError",
    "Dataset",
    "DatasetUnavailableError",
    "DeadlineExceededError",
    "EpochMetrics",
    "EpochReport",
    "ExpressionError",
    "FinalStatus",
    "IdxFormatError",
    "Job",
    "JobPage",
    "JobProgress",
    "JobStatus",
    "JobSummary",
    "Momentum",
    "Nesterov",
    "NonFiniteLossError",
    "OptimizerSpec",
    "ProgressReport",
    "ReportReply",
    "ResultReport",
    "RmsProp",
    "ScheduleRangeError",
    "ScheduleSpec",
    "Sgd",
    "SpecModel",
    "StepRangeError",
    "TrainConfig",
    "TrainResult",
    "TrainStatus",
    "TrainingError",
    "WorkerHeartbeat",
    "batches_per_epoch",
    "broker_transport_options",
    "check_schedule",
    "check_visibility_timeout",
    "compile_schedule",
    "evaluate",
    "first_nonfinite",
    "is_compiled",
    "kinds_catalog",
    "load_dataset",
    "load_params",
    "parse_spec",
    "published_limits",
    "save_params",
    "schedule_rates",
    "schedule_steps",
    "shorten",
    "step_range",
    "synthetic",
    "train",
]
