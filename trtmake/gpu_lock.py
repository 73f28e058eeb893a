"""A GPU is a resource (docs/design.md §8): at most `backend.tensorrt.max_builds_per_gpu`
TensorRT builds at a time on one device, across threads, processes and launchers.

A counting semaphore made of N file locks, one per slot:

    <cache>/locks/gpu/<host>/gpu<device>-slot<i>.lock

A build takes any free slot and holds it while the builder runs; with none free it polls
until one frees up or `cache.lock_timeout_s` passes (BuildFailed, naming the lock files).
The host is part of the path because a shared cache serves many machines, each with its own
GPU 0; the device is the physical one (CUDA_VISIBLE_DEVICES maps the logical index, as
Slurm and the launchers set it), so two jobs given different GPUs never wait on each other.
"""

from __future__ import annotations

import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from trtmake.errors import BuildFailed, UserError


def physical_device(device: int) -> str:
    """The device as the machine names it: CUDA_VISIBLE_DEVICES[device] when set, else the index."""
    visible = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    name = visible[device] if device < len(visible) else str(device)
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def slot_paths(lock_dir: Path, device: int, slots: int) -> list[Path]:
    folder = Path(lock_dir) / "gpu" / socket.gethostname()
    return [folder / f"gpu{physical_device(device)}-slot{i}.lock" for i in range(slots)]


@contextmanager
def gpu_slot(lock_dir: Path, device: int, slots: int, timeout_s: float, what: str = "build",
             poll_s: float = 0.05) -> Iterator[int]:
    """Hold one of `slots` build slots of `device` for the duration of the block; yields its index."""
    if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
        raise UserError(f"backend.tensorrt.max_builds_per_gpu: {slots!r} is out of range; allowed >= 1")
    from filelock import FileLock, Timeout

    paths = slot_paths(lock_dir, device, slots)
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    start = os.getpid() % slots  # spread first tries over the slots
    deadline = time.monotonic() + timeout_s
    while True:
        for i in [(start + j) % slots for j in range(slots)]:
            lock = FileLock(str(paths[i]))
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue
            try:
                yield i
            finally:
                lock.release()
            return
        if time.monotonic() >= deadline:
            raise BuildFailed(
                f"{what}: waited {timeout_s:.0f} s for a free GPU build slot ({slots} on device {device}, "
                f"{paths[0].parent}); raise backend.tensorrt.max_builds_per_gpu or cache.lock_timeout_s"
            )
        time.sleep(poll_s)
