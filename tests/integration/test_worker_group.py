"""One video on a group of ranks (``--gpus-per-job``), on CPU ranks joined over gloo.

Tolerances: every rank runs the same float32 model; CFG-parallel runs the transformer on a
batch of one per rank instead of a batch of two, so matrix products may sum in another order
and differ in the last bits (about 1e-7 relative). Through a few denoising steps and the VAE
that stays under one level of the 8-bit frames before encoding (asserted: at most 1 level
anywhere, and on fewer than 1% of the values). After x264 (lossy) a one-level difference can
move a block's choice of prediction, so the delivered MP4s are compared by their mean
(under 0.5 level) with a loose bound on any pixel.

Sequence parallelism (diffusers' context-parallel attention, Ulysses all-to-all) runs on two
gloo ranks for the tiny Wan 2.2 (a shrunk recipe): gloo has the all-to-all it
needs, and the mesh diffusers 0.42 would build on an accelerator (its ``enable_parallelism``
divides by the accelerator count, zero here) is built on the CPU instead. Each rank attends
over every token for its share of the heads, so the sums are the same ones in the same order:
the frames are asserted equal up to one level on under 1% of values, like CFG-parallel.
LTX-2's transformer cannot be split by diffusers 0.42's plan (its "split" rope is
4-dimensional where the plan shards 3): refused with that reason, tested.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import numpy.typing as npt
import pytest

from tests.integration.harness import Server, free_port, running

JOB = {"prompt": "a slow fox", "duration": 5, "generate_audio": False}  # costs 0.438
TASK = {"kind": "t2v", "prompt": "a red fox", "seed": 3, "tier": "fast"}


def _frames_on_rank(rank: int, world: int, port: int, strategy: str, out: Any) -> None:
    """One rank: join the group, load tiny, split its transformer, generate; rank 0 reports."""
    import torch

    from takeone.core.task import VideoTask
    from takeone.engine.parallel import apply_strategy, init_group
    from takeone.models.loader import load_video_model
    from takeone.models.registry import get_profile

    torch.set_num_threads(1)
    init_group(rank, world, port, torch.device("cpu"))
    model = load_video_model("tiny", "cpu")
    apply_strategy(model, strategy, rank, world)
    task = VideoTask(**TASK)  # type: ignore[arg-type]
    video = model.generate(task, get_profile("tiny").recipe_for(task), lambda d, t: None, lambda: False)
    if rank == 0:
        out.put(video.all_frames())


def _one_rank_frames() -> npt.NDArray[np.uint8]:
    from takeone.core.task import VideoTask
    from takeone.models.loader import load_video_model
    from takeone.models.registry import get_profile

    task = VideoTask(**TASK)  # type: ignore[arg-type]
    model = load_video_model("tiny", "cpu")
    frames: npt.NDArray[np.uint8] = model.generate(
        task, get_profile("tiny").recipe_for(task), lambda d, t: None, lambda: False).all_frames()
    return frames


def test_cfg_parallel_two_ranks_match_one_rank_before_encoding() -> None:
    from takeone.core.task import VideoTask
    from takeone.models.registry import get_profile

    recipe = get_profile("tiny").recipe_for(VideoTask(**TASK))  # type: ignore[arg-type]
    assert recipe.guidance_scale > 1.0  # guided: the batch of two the ranks split
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    port = free_port()
    ranks = [ctx.Process(target=_frames_on_rank, args=(r, 2, port, "cfg", out)) for r in range(2)]
    for proc in ranks:
        proc.start()
    try:
        two = out.get(timeout=300)
    finally:
        for proc in ranks:
            proc.join(timeout=60)
    one = _one_rank_frames()
    assert two.shape == one.shape
    diff = np.abs(two.astype(int) - one.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01, (diff.max(), (diff > 0).mean())
    assert one.std() > 1.0  # not a blank video that matches anything


WAN_TASK = {"kind": "t2v", "prompt": "a red fox", "seed": 3, "aspect_ratio": "1:1"}  # an even token count


def _small_wan() -> Any:
    from takeone.models.registry import get_profile
    from takeone.models.wan.profile import shrink

    return shrink(get_profile("wan-2.2"), gen_divisor=16, gen_frames={5: 9, 10: 17}, steps=2)


def _wan_frames(root: Path, rank: int = 0, world: int = 1, port: int = 0, out: Any = None) -> Any:
    """Tiny Wan 2.2 frames: on one process, or as one rank of a sequence-parallel group (rank 0
    reports the frames and how many tokens its last block saw, of how many in all)."""
    import torch

    from takeone.core.task import VideoTask
    from takeone.engine.parallel import apply_strategy, init_group
    from takeone.models.loader import load_video_model

    torch.set_num_threads(1)
    model: Any = load_video_model("wan-2.2", "cpu", weights=root)
    seen: list[tuple[int, int]] = []
    if world > 1:
        init_group(rank, world, port, torch.device("cpu"))
        assert apply_strategy(model, "auto", rank, world) == "sequence"
        transformer = model.pipeline("t2v").transformer
        transformer.blocks[-1].register_forward_pre_hook(
            lambda _m, args: seen.append((int(args[0].shape[1]), 0)))
        transformer.register_forward_pre_hook(
            lambda _m, args, kw: seen.append((0, _tokens(kw["hidden_states"]))), with_kwargs=True)
    task = VideoTask(**WAN_TASK)  # type: ignore[arg-type]
    frames = model.generate(task, _small_wan().recipe_for(task), lambda d, t: None, lambda: False).all_frames()
    if out is not None and rank == 0:
        out.put((frames, max(s[0] for s in seen), max(s[1] for s in seen)))
    return frames


def _tokens(latents: Any) -> int:
    """Wan's tokens for latents (B, C, F, H, W) in patches of (1, 2, 2)."""
    return int(latents.shape[2] * (latents.shape[3] // 2) * (latents.shape[4] // 2))


def test_sequence_parallel_two_ranks_match_one_rank_on_wan(tmp_path: Path) -> None:
    from takeone.models.wan.tiny import write_tiny_wan_repos

    root = write_tiny_wan_repos(tmp_path / "hub")
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    port = free_port()
    ranks = [ctx.Process(target=_wan_frames, args=(root, r, 2, port, out)) for r in range(2)]
    for proc in ranks:
        proc.start()
    try:
        two, block_tokens, all_tokens = out.get(timeout=300)
    finally:
        for proc in ranks:
            proc.join(timeout=60)
    assert block_tokens * 2 == all_tokens  # each rank's blocks ran on half the video's tokens
    one = _wan_frames(root)
    assert two.shape == one.shape
    diff = np.abs(two.astype(int) - one.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01, (diff.max(), (diff > 0).mean())
    assert one.std() > 1.0


def test_sequence_parallel_refuses_ltx2_with_the_reason() -> None:
    from takeone.engine.parallel import apply_strategy, resolve_strategy
    from takeone.models.loader import load_video_model

    model = load_video_model("tiny", "cpu")
    with pytest.raises(ValueError, match=r"--parallel sequence cannot run this model: "
                                         r"LTX2VideoTransformer3DModel's context-parallel plan .* 'split' rope"):
        apply_strategy(model, "sequence", 0, 2)
    transformers = [model.components["transformer"]]
    assert resolve_strategy("auto", transformers, 2) == "cfg"
    with pytest.raises(ValueError, match="'ring'"):
        resolve_strategy("ring", transformers, 2)


def _mp4_frames(path: Path) -> npt.NDArray[np.int64]:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]).astype(np.int64)


def test_generate_on_two_cpu_ranks_matches_one(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "takeone.cli", "generate", "kling-2.6", "--profile", "tiny",
            "--prompt", "fox", "--seed", "3", "--duration", "5", "--no-audio"]
    one, two = tmp_path / "one.mp4", tmp_path / "two.mp4"
    first = subprocess.run([*base, "-o", str(one)], capture_output=True, text=True, timeout=300)
    second = subprocess.run([*base, "--gpus-per-job", "2", "-o", str(two)], capture_output=True,
                            text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    assert second.returncode == 0, second.stderr[-2000:]
    assert "2 ranks" in second.stdout
    a, b = _mp4_frames(one), _mp4_frames(two)
    assert a.shape == b.shape == (121, 144, 256, 3)
    assert np.abs(a - b).mean() < 0.5 and np.abs(a - b).max() <= 32


def _wait_status(server: Server, key: str, rid: str, wanted: set[str], timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = httpx.get(f"{server.url}/v2/requests/{rid}/status", headers={"x-api-key": key}).json()
        if body["status"] in wanted:
            return body
        time.sleep(0.1)
    raise AssertionError(f"{rid} never reached {wanted}; last {body}\n{server.log()}")


def _submit(server: Server, key: str) -> str:
    r = httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers={"x-api-key": key})
    assert r.status_code == 200, r.text
    return str(r.json()["request_id"])


def _ranks(server: Server) -> tuple[int, list[int]]:
    """Rank 0's pid (the worker the server reports) and its sibling ranks' pids."""
    workers = [w for w in server.health()["workers"] if w["state"] == "ready"]
    assert workers, server.log()
    rank0 = int(workers[0]["pid"])
    assert server.proc is not None
    others = [pid for pid in _children(server.proc.pid) if pid != rank0 and "spawn_main" in _cmdline(pid)]
    return rank0, others


def _children(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(entry))
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return "spawn_main" in _cmdline(pid)  # not a zombie's reused number


@pytest.fixture(scope="module")
def group_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server with a 2-rank group for the tests below (each with its own key); the group
    a test breaks is rebuilt before that test ends."""
    with running(tmp_path_factory.mktemp("group"), "--profile", "tiny", "--gpus-per-job", "2",
                 "--debug-step-delay", "1") as server:
        yield server


def test_rank_killed_mid_job_runs_again_on_a_rebuilt_group_charged_once(group_server: Server) -> None:
    server = group_server
    key = server.key(10)
    rank0, others = _ranks(server)
    assert len(others) == 1
    rid = _submit(server, key)
    _wait_status(server, key, rid, {"PROCESSING"})
    time.sleep(1.5)  # a step or two in
    os.kill(others[0], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while _alive(rank0) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(rank0), "rank 0 outlived its group"
    done = _wait_status(server, key, rid, {"COMPLETED", "FAILED"})
    assert done["status"] == "COMPLETED", done
    assert server.balance(key) == pytest.approx(10 - 0.438)
    assert server.log_path is not None
    assert "rank 1 of a 2-rank group exited" in server.log_path.read_text(errors="replace")
    new0, new_others = _ranks(server)
    assert new0 != rank0 and len(new_others) == 1


def test_cancel_stops_every_rank_at_the_next_step(group_server: Server) -> None:
    server = group_server
    key = server.key(10)
    before = _ranks(server)
    rid = _submit(server, key)
    _wait_status(server, key, rid, {"PROCESSING"})
    r = httpx.post(f"{server.url}/v2/requests/{rid}/cancel", headers={"x-api-key": key})
    assert r.status_code == 200 and r.json()["error"] == "cancelled"
    assert server.balance(key) == 10
    nxt = _submit(server, key)  # the same group, still in step, runs the next job
    assert _wait_status(server, key, nxt, {"COMPLETED", "FAILED"})["status"] == "COMPLETED"
    assert _ranks(server) == before  # no rank died: the cancel stopped them together
    assert server.balance(key) == pytest.approx(10 - 0.438)
