from pathlib import Path

import pytest

from takeone.core.task import VideoTask
from takeone.edge.dialects.segmind.pricing import PriceTable
from takeone.edge.dialects.tier_prices import TierPrices


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


def test_prices_scale_per_second() -> None:
    """Every duration has a price: the rate per second times the seconds, unless one duration
    has its own entry (Segmind's 0.438 for 5 s of Kling 2.6)."""
    prices = PriceTable.default()
    assert prices.price("kling-2.6", VideoTask(kind="t2v", seconds=7, audio=True)) == pytest.approx(1.225)
    assert prices.price("kling-2.6", VideoTask(kind="t2v", seconds=10)) == 0.875
    assert prices.price("kling-2.5-turbo", VideoTask(kind="t2v", seconds=10)) == pytest.approx(0.88)
    assert prices.price("kling-3-standard-text2video", VideoTask(kind="t2v", tier="fast", seconds=3)) == 0.504
    assert prices.price("kling-3-standard-text2video",
                        VideoTask(kind="t2v", tier="fast", seconds=15, audio=True)) == pytest.approx(8.40)
    tiers = TierPrices.default()
    assert [tiers.price(VideoTask(kind="t2v", seconds=s)) for s in (4, 8, 12)] == pytest.approx([0.36, 0.72, 1.08])
    assert tiers.price(VideoTask(kind="t2v", tier="quality", seconds=5, audio=True)) == 1.75


def test_rates_and_single_durations_can_be_overridden(tmp_path: Path) -> None:
    f = tmp_path / "prices.toml"
    f.write_text('["kling-2.6".pro]\nper_second = 0.1\n"12+audio" = 2.0\n[tier.fast]\nper_second = 0.01\n')
    prices, tiers = PriceTable.load(f), TierPrices.load(f)
    assert prices.price("kling-2.6", VideoTask(kind="t2v", seconds=7)) == pytest.approx(0.7)
    assert prices.price("kling-2.6", VideoTask(kind="t2v", seconds=12, audio=True)) == 2.0
    assert tiers.price(VideoTask(kind="t2v", tier="fast", seconds=8)) == pytest.approx(0.08)
    for bad in ('per_minute = 1.0', '"5s" = 1.0', '"0" = 1.0'):
        f.write_text(f'["kling-2.6".pro]\n{bad}\n')
        with pytest.raises(ValueError, match="bad price"):
            PriceTable.load(f)
