"""``takeone generate``: one video made in this process, with a progress bar, no server.

The arguments go through the same endpoint validation as an HTTP body, so the command
accepts exactly what the API accepts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from takeone.core.errors import InvalidRequest, TakeoneError
from takeone.edge.dialects.segmind.registry import get_endpoint
from takeone.media.images import FetchPolicy, load_image, save_png


def _body(args: argparse.Namespace) -> dict[str, Any]:
    fields = {
        "prompt": args.prompt, "negative_prompt": args.negative_prompt, "mode": args.mode,
        "aspect_ratio": args.aspect_ratio, "duration": args.duration,
        "cfg_scale": args.cfg_scale, "seed": args.seed,
    }
    spec = get_endpoint(args.slug)
    if "mode" not in spec.schema.model_fields:
        fields.pop("mode")  # a route that is one tier has no mode field
    if spec.first_frame_field is not None:
        fields[spec.first_frame_field] = args.image
    elif args.image:
        raise SystemExit(f"takeone: {args.slug} takes no image (--image)")
    if spec.last_frame_field is not None:
        fields[spec.last_frame_field] = args.image_tail
    elif args.image_tail:
        raise SystemExit(f"takeone: {args.slug} takes no last frame (--image-tail)")
    if spec.audio_field is not None:
        fields[spec.audio_field] = not args.no_audio
    return {k: v for k, v in fields.items() if v is not None}


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://", "data:"))


def check_image_args(args: argparse.Namespace) -> str | None:
    """Why ``--image`` or ``--image-tail`` cannot be read, or None: a value that is no URL
    and looks like a path (a dot, or too short to be an image in base64) must be a file.

    Example::

        check_image_args(args)   # 'no such file: missing.jpg' for --image missing.jpg
    """
    for value in (args.image, args.image_tail):
        if not value or _is_url(value) or Path(value).expanduser().is_file():
            continue
        if "." in value or len(value) < 256:  # base64 has no dots; any image is longer
            return f"no such file: {value}"
    return None


def _image_value(value: str) -> str:
    """A local file becomes a data: URI; URLs and base64 pass through."""
    path = Path(value).expanduser()
    if not _is_url(value) and path.is_file():
        import base64

        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
    return value


async def _save_images(spec: Any, body: Any, folder: Path, policy: FetchPolicy) -> dict[str, str]:
    saved: dict[str, str] = {}
    for name, value in spec.image_inputs(body).items():
        image = await load_image(_image_value(value), name, policy)
        save_png(image, folder / f"{name}.png")
        saved[name] = str(folder / f"{name}.png")
    return saved


def generate_locally(args: argparse.Namespace, fetch_allow: frozenset[str]) -> int:
    spec = get_endpoint(args.slug)
    try:
        body = spec.parse(json.dumps(_body(args)).encode())
        with tempfile.TemporaryDirectory(prefix="takeone-") as tmp:
            images = asyncio.run(_save_images(spec, body, Path(tmp), FetchPolicy(allow_hosts=fetch_allow)))
            task = spec.to_task(body, images)
            if args.gpus_per_job < 1:
                raise InvalidRequest("--gpus-per-job", args.gpus_per_job, "must be 1 or more")
            if args.gpus_per_job > 1:
                return _render_in_group(spec, args, task)
            info = _render(spec, args.profile, task, args.output, args.weights, args.offload)
    except TakeoneError as exc:
        print(f"takeone: {exc.message}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} ({info.width}x{info.height}, {info.frames} frames at {info.fps:g} fps,"
          f" {'with' if info.has_audio else 'no'} audio, seed {info.seed})")
    return 0


def _render_in_group(spec: Any, args: argparse.Namespace, task: Any) -> int:
    """The one job on a group of ``--gpus-per-job`` ranks (engine/group.py)."""
    from takeone.engine.config import WorkerConfig
    from takeone.engine.group import run_one_job
    from takeone.models.registry import get_profile

    try:
        get_profile(args.profile).recipe_for(task)
    except InvalidRequest as exc:
        raise spec.rename(exc) from None
    print(f"loading profile {args.profile} on {args.gpus_per_job} ranks...", file=sys.stderr)
    config = WorkerConfig(profile=args.profile, weights_dir=str(args.weights) if args.weights else None,
                          offload=args.offload, gpus_per_job=args.gpus_per_job, parallel=args.parallel)
    metrics = run_one_job(config, task, args.output, lambda step, total: None)
    print(f"wrote {args.output} ({metrics['width']}x{metrics['height']}, {metrics['frames']} frames at"
          f" {metrics['fps']:g} fps, {'with' if metrics['has_audio'] else 'no'} audio,"
          f" seed {metrics['seed']}, {args.gpus_per_job} ranks)")
    return 0


def _render(spec: Any, profile_name: str, task: Any, output: Path, weights: Path | None,
            offload: str | None) -> Any:
    from tqdm import tqdm  # type: ignore[import-untyped]  # tqdm ships no type information

    from takeone.engine.render import render
    from takeone.models.loader import load_video_model
    from takeone.models.registry import get_profile

    profile = get_profile(profile_name)
    try:
        profile.recipe_for(task)
    except InvalidRequest as exc:
        raise spec.rename(exc) from None
    print(f"loading profile {profile_name}...", file=sys.stderr)
    model = load_video_model(profile_name, weights=weights, offload=offload)
    with tqdm(desc="denoising", unit="step") as bar:
        def progress(step: int, total: int) -> None:
            bar.total = total
            bar.n = step
            bar.refresh()

        return render(model, profile, task, output, progress=progress, should_cancel=lambda: False)
