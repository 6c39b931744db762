"""What one worker (a process, a rank group, or a Ray actor's) is told to be: its profile, its
device, where its weights and blobs are. Torch-free and picklable, so a dispatcher builds it
in the API process and hands it to the spawned worker.

Example::

    config = WorkerConfig.from_settings(settings, visible_gpu="0")
    blobs = config.open_blobs()
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from takeone.core.blobs import BlobStore
from takeone.core.settings import Settings


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker needs; picklable so it can cross into the spawned process."""

    profile: str
    device: str | None = None
    visible_gpu: str | None = None
    weights_dir: str | None = None
    offload: str | None = None
    step_delay_s: float = 0.0
    load_delay_s: float = 0.0  # only for exercising failures during load
    blobs_root: str = "."  # the local blob store's folder (the data folder)
    scratch_dir: str = "tmp"  # where jobs render before their file is stored
    storage_url: str | None = None  # s3://BUCKET/PREFIX: blobs live in a bucket, not blobs_root
    s3_endpoint: str | None = None
    simulate_oom_above: int = 0  # > 0: a batch larger than this "runs out of memory" (tests)
    gpus_per_job: int = 1  # ranks in this worker's group (engine/group.py); 1: a plain worker
    parallel: str = "auto"  # the group's strategy: auto | cfg | sequence

    @classmethod
    def from_settings(cls, settings: Settings, visible_gpu: str | None) -> WorkerConfig:
        """The worker a server's settings describe, on ``visible_gpu`` (None: the CPU, or the
        GPUs the environment already chose, as under Ray)."""
        return cls(profile=settings.profile, visible_gpu=visible_gpu,
                   weights_dir=str(settings.weights_dir) if settings.weights_dir else None,
                   offload=settings.offload, step_delay_s=settings.debug_step_delay_s,
                   load_delay_s=settings.debug_load_delay_s, blobs_root=str(settings.data_dir),
                   scratch_dir=str(settings.scratch_dir), storage_url=settings.storage_url,
                   s3_endpoint=settings.s3_endpoint, gpus_per_job=settings.gpus_per_job,
                   parallel=settings.parallel)

    def open_blobs(self) -> BlobStore:
        if self.storage_url is not None:
            from takeone.backends.s3_blobs import S3BlobStore

            return S3BlobStore.from_url(self.storage_url, endpoint=self.s3_endpoint)
        from takeone.backends.local_blobs import LocalBlobStore

        return LocalBlobStore(Path(self.blobs_root), secret=b"")  # the worker signs no links
