"""The API's documentation on a real server: /docs and /redoc load every asset from the server
itself (they work offline), the document declares how each operation authenticates, 405s
name the allowed methods and ``/files`` declares the 400 it answers."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.integration.harness import Server

ASSET = re.compile(r"""(?:src|href|spec-url)="([^"]+)"|url: '([^']+)'""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_doc_pages_load_their_assets_from_this_server(server: Server, page: str) -> None:
    r = httpx.get(server.url + page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "http://" not in r.text and "https://" not in r.text and "//" not in "".join(
        a or b for a, b in ASSET.findall(r.text))
    urls = [a or b for a, b in ASSET.findall(r.text)]
    kinds = {url.rsplit(".", 1)[-1] for url in urls}
    assert {"js", "json"} <= kinds and all(url.startswith("/") for url in urls), urls
    expected = {"js": "javascript", "css": "text/css", "json": "application/json", "png": "image/png"}
    for url in urls:
        asset = httpx.get(server.url + url)
        assert asset.status_code == 200, url
        assert expected[url.rsplit(".", 1)[-1]] in asset.headers["content-type"], url
        assert len(asset.content) > 1000, url


def test_the_document_declares_how_each_operation_authenticates(server: Server) -> None:
    doc = httpx.get(server.url + "/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["api_key"] == {**schemes["api_key"], "type": "apiKey", "in": "header", "name": "x-api-key"}
    assert schemes["bearer"]["type"] == "http" and schemes["bearer"]["scheme"] == "bearer"
    assert doc["security"] == [{"api_key": []}, {"bearer": []}]
    paths = doc["paths"]
    assert "security" not in paths["/v2/kling-2.6"]["post"]  # the document's default: a key
    assert "security" not in paths["/v1/videos"]["post"]
    assert paths["/v1/videos/text2video"]["post"]["security"] == [{"jwt": []}]
    assert schemes["jwt"]["bearerFormat"] == "JWT"
    assert paths["/healthz"]["get"]["security"] == [] and paths["/files/{key}"]["get"]["security"] == []
    key = server.key(3)
    for headers in ({"x-api-key": key}, {"authorization": f"Bearer {key}"}):  # what "Try it out" sends
        assert httpx.get(server.url + "/v1/get-user-credits", headers=headers).status_code == 200


def test_405_names_the_allowed_methods(server: Server) -> None:
    r = httpx.delete(server.url + "/healthz")
    assert r.status_code == 405 and r.headers["allow"] == "GET" and "error" in r.json()
    r = httpx.put(server.url + "/v2/requests/abc/status")
    assert r.status_code == 405 and r.headers["allow"] == "GET"


def test_files_declares_the_400_it_answers(server: Server) -> None:
    doc = httpx.get(server.url + "/openapi.json").json()
    assert "400" in doc["paths"]["/files/{key}"]["get"]["responses"]
    r = httpx.get(server.url + "/files/outputs/x.mp4", params={"expires": "soon", "sig": "x"})
    assert r.status_code == 400 and "expires" in r.json()["error"]


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/docs/oauth2-redirect", "/playground"])
def test_every_html_answer_carries_the_security_headers(server: Server, page: str) -> None:
    r = httpx.get(server.url + page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer"
    assert "'unsafe-inline'" not in r.headers["content-security-policy"].split("script-src")[1].split(";")[0]


def test_api_answers_are_not_sniffed_nor_referred(server: Server) -> None:
    r = httpx.get(server.url + "/healthz")
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("path,methods", [
    ("/v1/videos/text2video/abc", {"GET"}), ("/v1/videos/video_abc", {"GET", "DELETE"}),
    ("/v2/requests/abc/status", {"GET"}), ("/v1/get-user-credits", {"GET"})])
def test_options_and_405_name_every_method_of_the_path(server: Server, path: str, methods: set[str]) -> None:
    """Every route of a path counts (before: only the first one's methods were named)."""
    r = httpx.options(server.url + path)
    assert r.status_code == 204 and set(r.headers["allow"].split(", ")) == methods, r.headers
    r = httpx.put(server.url + path)
    assert r.status_code == 405 and set(r.headers["allow"].split(", ")) == methods


@pytest.mark.parametrize("path", ["/v1/get-user-credits", "/v2/requests"])
def test_post_on_a_get_path_is_a_405_not_an_unknown_model(server: Server, path: str) -> None:
    r = httpx.post(server.url + path, headers={"x-api-key": server.key(1)})
    assert r.status_code == 405 and r.headers["allow"] == "GET" and "error" in r.json()
