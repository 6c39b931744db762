"""The LoRA library without torch: a request's list checked field by field, key scopes, and
the catalog kept in a real local blob store."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from takeone.backends.local_blobs import LocalBlobStore
from takeone.core.errors import InvalidRequest, NotFound
from takeone.core.loras import (
    MAX_LORAS,
    LoraCatalog,
    LoraManifest,
    LoraUse,
    allowed,
    check_name,
    describe,
    file_key,
    manifest_key,
    parse_loras,
)


def field_of(value: object) -> tuple[str, object]:
    with pytest.raises(InvalidRequest) as caught:
        parse_loras(value)
    return caught.value.field, caught.value.value


def test_a_good_list_parses_with_the_default_scale() -> None:
    assert parse_loras(None) == ()
    assert parse_loras([]) == ()
    assert parse_loras([{"name": "anime"}, {"name": "ink_2", "scale": -2}, {"name": "x", "scale": 2.0}]) == (
        LoraUse("anime", 1.0), LoraUse("ink_2", -2.0), LoraUse("x", 2.0))


@pytest.mark.parametrize("value,field", [
    ("anime", "loras"),
    ({"name": "anime"}, "loras"),
    ([{"name": f"l{i}"} for i in range(MAX_LORAS + 1)], "loras"),
    (["anime"], "loras[0]"),
    ([{"name": "a"}, {"name": "b", "weight": 1}], "loras[1].weight"),
    ([{"scale": 1}], "loras[0].name"),
    ([{"name": "-dash-first"}], "loras[0].name"),
    ([{"name": "a" * 65}], "loras[0].name"),
    ([{"name": "a/b"}], "loras[0].name"),
    ([{"name": 7}], "loras[0].name"),
    ([{"name": "a", "scale": 2.01}], "loras[0].scale"),
    ([{"name": "a", "scale": math.nan}], "loras[0].scale"),
    ([{"name": "a", "scale": True}], "loras[0].scale"),
    ([{"name": "a", "scale": "1"}], "loras[0].scale"),
    ([{"name": "a"}, {"name": "a", "scale": 0.5}], "loras[1].name"),
])
def test_each_mistake_names_its_element(value: object, field: str) -> None:
    assert field_of(value)[0] == field


def test_names_and_keys() -> None:
    assert check_name("A1_b-c") == "A1_b-c"
    assert file_key("anime") == "loras/anime.safetensors" and manifest_key("anime") == "loras/anime.json"
    with pytest.raises(InvalidRequest, match="^name: "):
        file_key("../escape")


def test_lora_scopes() -> None:
    assert allowed(None, "anime") and allowed(["kling-2.6"], "anime")  # no lora: scope: every LoRA
    assert allowed(["lora:anime", "kling-2.6"], "anime")
    assert not allowed(["lora:anime"], "ink")


def test_describe_for_log_lines() -> None:
    assert describe([LoraUse("anime", 0.8), LoraUse("ink", 1.0)]) == "anime@0.8,ink@1"
    assert describe([]) == ""


def manifest(name: str, profile: str = "tiny", surcharge: float = 0.0) -> LoraManifest:
    return LoraManifest(name=name, profile=profile, size=4, sha256="0" * 64, rank=4,
                        targets=("attn.to_q", "attn.to_k"), layout="diffusers", surcharge=surcharge,
                        extra={"note": "x"})


def test_a_manifest_round_trips_and_shows_only_public_fields() -> None:
    m = manifest("anime", surcharge=0.5)
    assert LoraManifest.from_json(m.to_json()) == m
    assert m.public() == {"name": "anime", "profile": "tiny", "rank": 4, "surcharge": 0.5, "size": 4}


def test_the_catalog_in_a_blob_store(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path, b"s" * 32)
    catalog = LoraCatalog(blobs)
    catalog.add(manifest("anime"), b"data")
    catalog.add(manifest("wan-style", profile="wan"), b"more")
    blobs.put("loras/broken.json", b"{not json")  # a manifest this version cannot read is left out
    assert [m.name for m in catalog.entries()] == ["anime", "wan-style"]
    assert b"".join(blobs.open(file_key("anime"))) == b"data"
    assert [m.name for m in catalog.resolve([LoraUse("anime")], "tiny", None)] == ["anime"]
    with pytest.raises(InvalidRequest, match=r"loras\[1\]\.name: is for profile 'wan'"):
        catalog.resolve([LoraUse("anime"), LoraUse("wan-style")], "tiny", None)
    with pytest.raises(InvalidRequest) as caught:
        catalog.resolve([LoraUse("nobody")], "tiny", None)
    assert caught.value.field == "loras[0].name"
    with pytest.raises(InvalidRequest):
        catalog.resolve([LoraUse("anime")], "tiny", ["lora:other"])  # outside the key's scopes
    assert catalog.remove("anime").name == "anime"
    assert blobs.stat(file_key("anime")) is None
    with pytest.raises(NotFound, match="no LoRA named 'anime'"):
        catalog.get("anime")


def test_a_name_with_a_final_newline_is_refused() -> None:
    assert field_of([{"name": "anime\n"}]) == ("loras[0].name", "anime\n")
