"""Lightricks' reference recipe, stated independently of takeone's code, for the tests."""

from __future__ import annotations

import math


def full_model_schedule(steps: int = 30) -> list[float]:
    """The reference's full-model sigmas: linspace(1, 0, steps + 1) without the final 0, shift
    mu = 2.05 (the line through (1024 tokens, 0.95) and (4096, 2.05), evaluated at 4,096
    tokens whatever the clip's size), sigma' = e^mu / (e^mu + 1/sigma - 1), then stretched so
    that the last non-zero sigma is 0.1."""
    mu = 0.95 + (4096 - 1024) * (2.05 - 0.95) / (4096 - 1024)
    shifted = [math.exp(mu) / (math.exp(mu) + 1 / (1 - i / steps) - 1) for i in range(steps)]
    return [1 - (1 - s) * (1 - 0.1) / (1 - shifted[-1]) for s in shifted]
