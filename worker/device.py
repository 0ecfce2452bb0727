"""Which accelerator a worker owns: one worker process per accelerator (DESIGN §3).

``CUDA_VISIBLE_DEVICES`` always wins; else ``LRSCHED_DEVICE`` sets it. With neither, a worker on a
machine with several GPUs would see them all, and JAX would reserve most of the memory of every
one of them; so the worker takes the first only and says, in its log, how to choose. (It does not
refuse to start: a one-GPU default is what a user trying it out expects.)
"""

from __future__ import annotations

import glob
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceChoice:
    """What to set ``CUDA_VISIBLE_DEVICES`` to (None: leave it), and a warning to log, if any."""

    cuda_visible_devices: str | None = None
    warning: str | None = None


def nvidia_gpus() -> int:
    """How many NVIDIA GPUs this process can open (their ``/dev/nvidiaN`` nodes; a container
    sees only the ones it was given)."""
    return len(glob.glob("/dev/nvidia[0-9]*"))


def choose_device(environ: Mapping[str, str], device: str | None, gpus: int) -> DeviceChoice:
    """Decide the worker's GPU before JAX starts.

    Args:
        environ: the process's environment.
        device: the ``LRSCHED_DEVICE`` setting.
        gpus: how many GPUs are visible (:func:`nvidia_gpus`).
    """
    if "CUDA_VISIBLE_DEVICES" in environ:
        return DeviceChoice()
    if device is not None:
        return DeviceChoice(cuda_visible_devices=device)
    if gpus > 1 and environ.get("JAX_PLATFORMS", "").lower() != "cpu":
        return DeviceChoice(
            cuda_visible_devices="0",
            warning=(
                f"{gpus} GPUs are visible and none was chosen, so this worker uses GPU 0 only "
                "(JAX would otherwise reserve memory on every one): run one worker per GPU, each "
                "with CUDA_VISIBLE_DEVICES (or LRSCHED_DEVICE) set to its GPU's index"
            ),
        )
    return DeviceChoice()
