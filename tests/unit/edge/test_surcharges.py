"""The prices file's ``[surcharge]`` table: per profile and per LoRA, the manifest's value as
the default, and a clear error for a bad entry (the Segmind table leaves the table alone)."""

from __future__ import annotations

from pathlib import Path

import pytest

from takeone.core.loras import LoraManifest
from takeone.core.task import VideoTask
from takeone.edge.dialects.segmind.pricing import PriceTable
from takeone.edge.surcharges import Surcharges


def manifest(name: str, surcharge: float) -> LoraManifest:
    return LoraManifest(name=name, profile="tiny", size=1, sha256="", rank=2, targets=(), layout="diffusers",
                        surcharge=surcharge)


def test_profile_and_lora_surcharges_with_the_manifest_as_default(tmp_path: Path) -> None:
    f = tmp_path / "prices.toml"
    f.write_text('["kling-2.6".pro]\n"5" = 0.4\n[surcharge.profile]\ntiny = 0.1\n"ltx-2" = 2\n'
                 '[surcharge.lora]\ncel = 0.3\n')
    surcharges = Surcharges.load(f)
    cel, ink = manifest("cel", 0.5), manifest("ink", 0.25)
    assert surcharges.of_lora(cel) == 0.3 and surcharges.of_lora(ink) == 0.25
    assert surcharges.for_job("tiny", [cel, ink]) == pytest.approx(0.65)
    assert surcharges.for_job("ltx-2", []) == 2.0 and surcharges.for_job("wan-2.2", [ink]) == 0.25
    assert PriceTable.load(f).price("kling-2.6", VideoTask(kind="t2v", seconds=5)) == 0.4
    assert Surcharges.load(None).for_job("tiny", [ink]) == 0.25


@pytest.mark.parametrize("text,named", [
    ("[surcharge.profile]\nno-such-profile = 1\n", "surcharge.profile.no-such-profile"),
    ("[surcharge.lora]\ncel = -1\n", "surcharge.lora.cel = -1"),
    ('[surcharge.lora]\ncel = "x"\n', "surcharge.lora.cel = 'x'"),
    ('[surcharge.lora]\n"bad name" = 1\n', "surcharge.lora.bad name"),
    ("[surcharge.route]\nx = 1\n", "[surcharge.profile]"),
])
def test_bad_entries_are_named(tmp_path: Path, text: str, named: str) -> None:
    f = tmp_path / "prices.toml"
    f.write_text(text)
    with pytest.raises(ValueError) as caught:
        Surcharges.load(f)
    assert named in str(caught.value)
