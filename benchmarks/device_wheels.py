"""Wheels for the GPU proof on a machine without a package index, and the one command to run there.

    python benchmarks/device_wheels.py                       # download into .whl/, check, print the command
    python benchmarks/device_wheels.py --python 3.11 --dest /tmp/w   # the same set for this Python (tests)
    python benchmarks/device_wheels.py --simulate /tmp/sim   # install as there and run the CPU smoke here

The GPU machine (``benchmarks/device_packages.txt``: Python 3.12.3 as ``python3``, torch
2.11.0+cu130, transformers, tokenizers, safetensors, huggingface_hub, numpy, Pillow, regex,
PyYAML and more) lacks exactly :data:`WHEELS`: diffusers (the pipelines), PyAV (the MP4 writer,
and diffusers' LTX-2 image conditioning re-encodes the image with it) and torchao (fp8; the
proof runs without it, recording fp8 as skipped). This script, on a machine that reaches the
package index:

1. downloads those wheels (no dependencies: every one they import is on the list) for the
   target's Python and platform, manylinux x86_64, into ``--dest`` (``.whl/``, ignored by git);
2. checks that each wheel's tags install on that Python and platform, that the folder holds
   nothing else, and that the wheels plus the working tree stay under :data:`LIMIT_MIB` MiB
   (what one call to the GPU machine may carry is 64 MiB: this leaves room);
3. prints the one command (under 2,000 characters) that installs them there with
   ``pip install --no-index --no-deps --target`` and runs ``benchmarks/gpu_proof.py``.

It exits non-zero, saying why, when a check fails. The same wheels serve Python 3.11 and 3.12
(diffusers is pure Python; PyAV and torchao are ``abi3`` builds), which is what lets a test on a
3.11 machine install and run exactly this set (``tests/unit/benchmarks/test_device_wheels.py``).

``--simulate DIR`` is that check as a command: it installs the wheels the way the printed
command does into the bare folder ``DIR/site``, makes ``DIR/image`` stand in for the GPU
machine's image (the packages ``device_packages.txt`` lists and nothing else: the pure-Python
ones whose version was read there, :data:`AT_TARGET_VERSION`, downloaded at that version, the
others linked from this Python's installs, torch, numpy and Pillow among them), and runs the
proof's CPU smoke with ``python -S`` (no site-packages) on ``DIR/site:DIR/image:src`` alone.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = Path(__file__).with_name("device_packages.txt")
# What the GPU machine lacks, pinned: the versions the proof was checked with.
WHEELS = ("diffusers==0.42.1", "av==18.1.0", "torchao==0.17.0")
# Every distribution the proof imports on its way (takeone runs from src/, not installed).
PROOF_NEEDS = (
    "torch", "numpy", "pillow", "diffusers", "transformers", "tokenizers", "safetensors", "huggingface-hub",
    "regex", "pyyaml", "av", "torchao", "accelerate", "sentencepiece", "tqdm", "requests", "filelock", "packaging",
)  # fmt: skip
TARGET_PYTHON = "3.12"
# glibc of the GPU machine's image is newer than any of these; pip matches each tag exactly.
PLATFORMS = tuple(f"manylinux_2_{n}_x86_64" for n in (39, 35, 34, 31, 28, 27, 24, 17)) + (
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)
# Pure-Python (or abi3) packages whose version on the GPU machine is known: the stand-in image
# of --simulate gets exactly that version, not this machine's.
AT_TARGET_VERSION = ("huggingface-hub", "transformers", "tokenizers", "accelerate")
LIMIT_MIB = 50.0
COMMAND_LIMIT = 2000
SITE = "/tmp/takeone-site"
MIB = 1024 * 1024


def target_packages(path: Path = PACKAGES) -> dict[str, str | None]:
    """The GPU machine's packages: canonical name -> version (``None`` where not read)."""
    packages: dict[str, str | None] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, version = line.partition("==")
        packages[canonicalize_name(name)] = version or None
    return packages


def missing(packages: dict[str, str | None]) -> list[str]:
    """What the proof needs that the GPU machine does not have, in :data:`PROOF_NEEDS` order."""
    return [name for name in PROOF_NEEDS if canonicalize_name(name) not in packages]


def download(dest: Path, python: str) -> list[Path]:
    """Download :data:`WHEELS` (binary only, no dependencies) for ``python`` on Linux x86_64."""
    dest.mkdir(parents=True, exist_ok=True)
    platforms = [argument for platform in PLATFORMS for argument in ("--platform", platform)]
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--python-version", python, "--implementation", "cp", *platforms,
               "--dest", str(dest), *WHEELS]  # fmt: skip
    subprocess.run(command, check=True)
    return wheel_files(dest)


def wheel_files(dest: Path) -> list[Path]:
    return sorted(dest.glob("*.whl"))


def supported_tags(python: str) -> set[Tag]:
    """Every tag a CPython ``python`` on manylinux x86_64 installs."""
    version = tuple(int(part) for part in python.split("."))[:2]
    return set(cpython_tags(version, platforms=list(PLATFORMS))) | set(
        compatible_tags(version, "cp" + "".join(map(str, version)), platforms=list(PLATFORMS))
    )


def check(wheels: list[Path], python: str, tree_bytes: int) -> list[str]:
    """Problems with ``wheels`` for ``python``: wrong tags, not the set, too large. Empty when fine."""
    problems = []
    tags = supported_tags(python)
    found: dict[str, str] = {}
    for wheel in wheels:
        name, version, _build, wheel_tags = parse_wheel_filename(wheel.name)
        found[str(name)] = str(version)
        if not wheel_tags & tags:
            problems.append(f"{wheel.name}: no tag installs on CPython {python} manylinux x86_64")
    wanted = {str(canonicalize_name(spec.split("==")[0])): spec.split("==")[1] for spec in WHEELS}
    if found != wanted:
        problems.append(f"the folder holds {sorted(found.items())}, not exactly {sorted(wanted.items())}")
    total = (sum(wheel.stat().st_size for wheel in wheels) + tree_bytes) / MIB
    if total >= LIMIT_MIB:
        problems.append(f"wheels plus working tree are {total:.1f} MiB, over {LIMIT_MIB:g} MiB")
    return problems


def tree_bytes(root: Path = ROOT) -> int:
    """Bytes of the working tree as it travels: tracked files plus untracked ones git does not ignore."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                            capture_output=True, check=True).stdout.split(b"\0")  # fmt: skip
    return sum(path.stat().st_size for name in listed if name and (path := root / name.decode()).is_file())


def command(dest: str, out: str, deadline: float, site: str = SITE) -> str:
    """The one command to run from the repository root on the GPU machine."""
    install = f"python3 -m pip install -q --no-index --no-deps --no-compile --target {site} {dest}/*.whl"
    run = f"PYTHONPATH={site}:src python3 benchmarks/gpu_proof.py --out {out} --deadline {deadline:g}"
    line = f"{install} && {run}"
    if len(line) >= COMMAND_LIMIT:
        raise ValueError(f"the command is {len(line)} characters, over {COMMAND_LIMIT}")
    return line


def stand_in_image(base: Path, downloads: Path) -> None:
    """The GPU machine's image, as far as this machine can give it (see the module docstring)."""
    import importlib.metadata as metadata

    packages = target_packages()
    pinned = [f"{name}=={packages[name]}" for name in AT_TARGET_VERSION]
    base.mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "-d", str(downloads), *pinned], check=True)  # fmt: skip
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                    "--target", str(base), *map(str, sorted(downloads.glob("*.whl")))], check=True)  # fmt: skip
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name not in packages or name in AT_TARGET_VERSION:
            continue
        for top in {f.parts[0] for f in dist.files or [] if f.parts[0] != ".." and not f.name.endswith(".pth")}:
            source, link = Path(str(dist.locate_file(top))), base / top
            if source.exists() and not link.exists():
                link.symlink_to(source)


def simulate(folder: Path, wheels: list[Path], extra: list[str]) -> subprocess.CompletedProcess[str]:
    """Install ``wheels`` bare into ``folder/site``, build ``folder/image``, run the CPU smoke
    from them alone (output into ``folder/proof``); returns the finished process."""
    site, image = folder / "site", folder / "image"
    install = command(str(wheels[0].parent), "unused", 1, site=str(site)).split(" && ")[0]
    subprocess.run(install.replace("python3", sys.executable, 1), shell=True, check=True, cwd=ROOT)
    stand_in_image(image, folder / "downloads")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(folder), "PYTHONPATH": f"{site}:{image}:src"}
    proof = [sys.executable, "-S", "benchmarks/gpu_proof.py", "--cpu-smoke", "--out", str(folder / "proof"), *extra]
    print(f"PYTHONPATH={env['PYTHONPATH']} python -S {' '.join(proof[2:])}", flush=True)
    return subprocess.run(proof, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dest", type=Path, default=ROOT / ".whl", help="folder for the wheels (default .whl/)")
    parser.add_argument("--python", default=TARGET_PYTHON, help="the target's Python, MAJOR.MINOR")
    parser.add_argument("--out", default="proof", help="folder the proof writes proof.json and its MP4s to")
    parser.add_argument("--deadline", type=float, default=540.0, help="the proof's deadline in seconds")
    parser.add_argument("--no-download", action="store_true", help="check the wheels already in --dest")
    parser.add_argument("--simulate", type=Path, metavar="DIR",
                        help="then install them bare under DIR and run the CPU smoke from there (see above)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    lacking = missing(target_packages())
    wanted = [spec.split("==")[0] for spec in WHEELS]
    if [canonicalize_name(n) for n in lacking] != [canonicalize_name(n) for n in wanted]:
        print(f"device_packages.txt says the machine lacks {lacking}; WHEELS carries {wanted}", file=sys.stderr)
        return 1
    wheels = wheel_files(args.dest) if args.no_download else download(args.dest, args.python)
    problems = check(wheels, args.python, tree_bytes())
    for wheel in wheels:
        print(f"{wheel.stat().st_size / MIB:6.2f} MiB  {wheel.name}")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    total = sum(wheel.stat().st_size for wheel in wheels) / MIB
    print(f"{total:6.2f} MiB  wheels; {tree_bytes() / MIB:.2f} MiB working tree; limit {LIMIT_MIB:g} MiB")
    dest = args.dest.resolve()
    shown = str(dest.relative_to(ROOT)) if dest.is_relative_to(ROOT) else str(dest)
    print(command(shown, args.out, args.deadline))
    if args.simulate is not None:
        done = simulate(args.simulate.resolve(), wheels, [])
        print(done.stdout, end="")
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
        return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
