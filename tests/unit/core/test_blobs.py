"""Blob keys: only the names takeone makes pass, so no key can reach outside the store."""

from __future__ import annotations

import pytest

from takeone.core.blobs import check_key, input_key, input_prefix, output_key, poster_key
from takeone.core.errors import NotFound


def test_the_keys_takeone_makes() -> None:
    assert input_key("req_1", "first_frame") == "inputs/req_1/first_frame.png"
    assert input_prefix("req_1") == "inputs/req_1/"
    assert output_key("req-1") == "outputs/req-1.mp4"
    assert poster_key("req_1") == "outputs/req_1.jpg"
    assert check_key("loras/anime-v2.safetensors") == "loras/anime-v2.safetensors"
    assert check_key("loras/anime.json") == "loras/anime.json"


@pytest.mark.parametrize("key", [
    "outputs/../secret.key", "../outputs/a.mp4", "/etc/passwd", "outputs/a.exe", "outputs/a.mp4/",
    "outputs/a/b/c.mp4", "inputs/a b/first.png", "secret.key", "outputs/.mp4", "outputs/" + "a" * 65 + ".mp4",
    "loras/-x.json", "loras/sub/x.json", "loras/x.py", "OUTPUTS/a.mp4", "outputs/a.mp4\n",
])
def test_anything_else_is_not_found(key: str) -> None:
    with pytest.raises(NotFound) as caught:
        check_key(key)
    assert repr(key) in str(caught.value)


def test_a_job_id_that_would_escape_is_refused_when_the_key_is_made() -> None:
    with pytest.raises(NotFound):
        output_key("../../etc/passwd")
    with pytest.raises(NotFound):
        input_key("req_1", "../first")
