from pathlib import Path

import pytest

from takeone.accounts.pricing import PriceTable
from takeone.generation import GenerationRequest


def _req(**kw: object) -> GenerationRequest:
    return GenerationRequest(**kw)  # type: ignore[arg-type]


def test_defaults_match_the_seed() -> None:
    prices = PriceTable.default()
    assert prices.price(_req(endpoint="kling-2.6", duration=5, generate_audio=False)) == 0.438
    assert prices.price(_req(endpoint="kling-2.6", duration=10, generate_audio=True)) == 1.75
    assert prices.price(_req(endpoint="kling-2.1", mode="std", duration=5)) == 0.25
    # kling-2.1 never has audio, whatever the flag says
    assert prices.price(_req(endpoint="kling-2.1", mode="pro", duration=10, generate_audio=True)) == 0.9


def test_operator_overrides(tmp_path: Path) -> None:
    f = tmp_path / "prices.toml"
    f.write_text('["kling-2.6".pro]\n"5" = 0.1\n')
    assert PriceTable.load(f).price(_req(endpoint="kling-2.6", duration=5)) == 0.1
    f.write_text('["kling-2.6".turbo]\n"5" = 0.1\n')
    with pytest.raises(ValueError, match="turbo"):
        PriceTable.load(f)
