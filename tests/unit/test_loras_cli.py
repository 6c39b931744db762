"""``takeone loras add/list/remove``: real files in a real data folder, checked at add time."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from takeone.backends.local_blobs import LocalBlobStore
from takeone.cli.main import main
from takeone.core.loras import LoraCatalog, file_key
from tests.support.loras import make_lora


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_add_list_remove_both_layouts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "data")
    diffusers = make_lora(tmp_path / "a.safetensors", "diffusers")
    kohya = make_lora(tmp_path / "b.safetensors", "kohya", rank=3)
    code, out, err = run(capsys, "loras", "add", "anime", str(diffusers), "--profile", "tiny",
                         "--surcharge", "0.5", "--data-dir", data)
    assert code == 0, err
    assert "rank 2" in out and "diffusers layout" in out
    code, out, err = run(capsys, "loras", "add", "ink", str(kohya), "--profile", "tiny", "--data-dir", data)
    assert code == 0, err
    assert "rank 3" in out and "kohya layout" in out
    # rank 4 makes a header 0x380 bytes long: its first byte is 0x80, a pickle's first byte too
    wide = make_lora(tmp_path / "c.safetensors", rank=4)
    assert wide.read_bytes()[0] == 0x80
    code, out, err = run(capsys, "loras", "add", "wide", str(wide), "--profile", "tiny", "--data-dir", data)
    assert code == 0, err
    code, out, _ = run(capsys, "loras", "list", "--data-dir", data)
    assert code == 0 and "anime" in out and "ink" in out and "0.5" in out
    catalog = LoraCatalog(LocalBlobStore(Path(data), b""))
    manifest = catalog.get("ink")
    assert manifest.profile == "tiny" and manifest.rank == 3 and manifest.layout == "kohya"
    stored = Path(data) / file_key("ink")
    header = json.loads(stored.read_bytes()[8:8 + int.from_bytes(stored.read_bytes()[:8], "little")])
    assert all(k.startswith("transformer.") and ".lora_" in k for k in header if k != "__metadata__")
    code, out, _ = run(capsys, "loras", "remove", "anime", "--data-dir", data)
    assert code == 0 and "removed" in out
    assert [m.name for m in catalog.entries()] == ["ink", "wide"]
    code, _, err = run(capsys, "loras", "remove", "anime", "--data-dir", data)
    assert code == 2 and "no LoRA named 'anime'" in err


@pytest.mark.parametrize("case", ["pickle", "pickle_renamed", "other_model", "wrong_shape", "oversized",
                                  "empty"])
def test_refusals_name_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    data = str(tmp_path / "data")
    extra: list[str] = []
    if case == "pickle":
        path = tmp_path / "style.ckpt"
        path.write_bytes(pickle.dumps({"a": 1}))
        expected = "pickle"
    elif case == "pickle_renamed":
        path = tmp_path / "style.safetensors"
        path.write_bytes(pickle.dumps({"a": 1}))
        expected = "is not a safetensors file"
    elif case == "other_model":  # Wan's module names: not in the tiny LTX-2 transformer
        path = make_lora(tmp_path / "wan.safetensors", targets=("blocks.0.attn1.to_q",),
                         shapes={"blocks.0.attn1.to_q": (16, 16)})
        expected = "'blocks.0.attn1.to_q', which 'tiny'"
    elif case == "wrong_shape":
        path = make_lora(tmp_path / "big.safetensors", targets=("transformer_blocks.0.attn1.to_q",),
                         shapes={"transformer_blocks.0.attn1.to_q": (32, 32)})
        expected = "a LoRA of another model"
    elif case == "oversized":
        path = make_lora(tmp_path / "ok.safetensors")
        extra = ["--max-size-mb", "0.0001"]
        expected = "the limit is"
    else:
        import torch
        from safetensors.torch import save_file

        path = tmp_path / "empty.safetensors"
        save_file({"something.weight": torch.zeros(2)}, str(path))
        expected = "no LoRA weights"
    code, _, err = run(capsys, "loras", "add", "style", str(path), "--profile", "tiny", "--data-dir", data, *extra)
    assert code == 2, err
    assert expected in err and path.name in err
    assert LoraCatalog(LocalBlobStore(Path(data), b"")).entries() == []


def test_url_goes_through_the_address_guard(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "loras", "add", "style", "http://127.0.0.1:9/x.safetensors",
                       "--profile", "tiny", "--data-dir", str(tmp_path))
    assert code == 2 and "FILE_OR_URL" in err and "loopback" in err.lower()


def test_an_allowed_url_is_fetched_and_checked_and_an_oversized_one_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the same guard: a host named in TAKEONE_FETCH_ALLOW is fetched (here a local
    server), the file checked like a local one; the size cap stops a download mid-way."""
    from tests.integration.harness import ImageServer

    data = str(tmp_path / "data")
    lora = make_lora(tmp_path / "k.safetensors", "kohya", seed=9).read_bytes()
    server = ImageServer({"/k.safetensors": ("application/octet-stream", lora)})
    try:
        monkeypatch.setenv("TAKEONE_FETCH_ALLOW", "127.0.0.1")
        code, out, err = run(capsys, "loras", "add", "remote", server.url("/k.safetensors"),
                             "--profile", "tiny", "--data-dir", data)
        assert code == 0, err
        assert "kohya layout" in out and server.hits == ["/k.safetensors"]
        manifest = LoraCatalog(LocalBlobStore(Path(data), b"")).get("remote")
        assert manifest.layout == "kohya" and manifest.rank == 2
        code, _, err = run(capsys, "loras", "add", "big", server.url("/k.safetensors"), "--profile", "tiny",
                           "--data-dir", data, "--max-size-mb", str(len(lora) / 2 / 1024 / 1024))
        assert code == 2 and "FILE_OR_URL" in err, err
    finally:
        server.close()
    assert [m.name for m in LoraCatalog(LocalBlobStore(Path(data), b"")).entries()] == ["remote"]
