import subprocess
import sys
from pathlib import Path


def _takeone(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "takeone.cli", *args], capture_output=True,
                         text=True, check=True, timeout=180)
    return out.stdout


def test_keys_lifecycle(tmp_path: Path) -> None:
    d = str(tmp_path)
    out = _takeone("keys", "create", "--data-dir", d, "--credits", "5", "--scope", "kling-2.6",
                   "--rate-limit", "10")
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("tk_") and " " not in secret
    listing = _takeone("keys", "list", "--data-dir", d)
    assert secret not in listing and "kling-2.6" in listing and secret[:7] in listing
    key_id = listing.splitlines()[1].split()[0]
    assert "7.5" in _takeone("keys", "credit", "--data-dir", d, key_id, "2.5")
    _takeone("keys", "revoke", "--data-dir", d, key_id)
    assert "revoked" in _takeone("keys", "list", "--data-dir", d)
    assert secret not in (tmp_path / "takeone.db").read_bytes().decode("latin-1")


def test_generate_locally_writes_mp4s(tmp_path: Path) -> None:
    from PIL import Image

    from tests.mp4probe import probe

    first, last = tmp_path / "first.png", tmp_path / "last.jpg"
    Image.new("RGB", (320, 200), (200, 10, 10)).save(first)
    Image.new("RGB", (300, 300), (10, 10, 200)).save(last)
    out26, out21 = tmp_path / "t.mp4", tmp_path / "i.mp4"
    _takeone("generate", "kling-2.6", "--profile", "tiny", "--prompt", "waves", "--duration", "5",
             "-o", str(out26))
    _takeone("generate", "kling-2.1", "--profile", "tiny", "--image", str(first), "--image-tail",
             str(last), "--aspect-ratio", "1:1", "-o", str(out21))
    p26, p21 = probe(out26.read_bytes()), probe(out21.read_bytes())
    assert (p26.width, p26.height, p26.frames, p26.audio_codec) == (256, 144, 121, "aac")
    assert (p21.width, p21.height, p21.frames, p21.audio_codec) == (144, 144, 121, None)


def test_generate_rejects_bad_input_clearly(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "takeone.cli", "generate", "kling-2.6", "--profile",
                          "tiny", "--prompt", "x", "--duration", "7", "-o", str(tmp_path / "x.mp4")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "duration" in out.stderr and "7" in out.stderr


def test_help_shows_each_default_once() -> None:
    for command in ("serve", "worker"):
        text = _takeone(command, "--help")
        assert "(default: None)" not in text and "(default: False)" not in text
        assert "(default: 1000)" in text or command == "worker"  # --max-queue: said once, by the formatter
        assert "default 900) (default" not in " ".join(text.split())
