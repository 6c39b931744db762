from pathlib import Path

import pytest

from takeone.core.task import VideoTask
from takeone.edge.dialects.segmind.pricing import PriceTable


def test_defaults_match_the_seed() -> None:
    prices = PriceTable.default()
    assert prices.price("kling-2.6", VideoTask(kind="t2v", seconds=5)) == 0.438
    assert prices.price("kling-2.6", VideoTask(kind="t2v", seconds=10, audio=True)) == 1.75
    first = {"first_frame": "inputs/x/image.png"}
    assert prices.price("kling-2.1", VideoTask(kind="i2v", tier="fast", seconds=5, **first)) == 0.25
    assert prices.price("kling-2.1", VideoTask(kind="i2v", tier="quality", seconds=10, **first)) == 2.8


def test_operator_overrides(tmp_path: Path) -> None:
    f = tmp_path / "prices.toml"
    f.write_text('["kling-2.6".pro]\n"5" = 0.1\n')
    assert PriceTable.load(f).price("kling-2.6", VideoTask(kind="t2v", seconds=5)) == 0.1
    f.write_text('["kling-2.6".turbo]\n"5" = 0.1\n')
    with pytest.raises(ValueError, match="turbo"):
        PriceTable.load(f)
