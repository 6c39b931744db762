"""The playground end to end: a real server, a real headless Chromium, real MP4 playback."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from takeone.edge.dialects.segmind.kling_2_6 import EXAMPLE_PROMPT
from tests.browser.conftest import PHONE
from tests.integration.harness import ImageServer, Server, png_bytes

pytestmark = pytest.mark.browser

JOB_TIMEOUT_MS = 90_000


def open_playground(page: Page, key: str, path: str = "/") -> None:
    page.goto(path)
    page.get_by_label("API key", exact=True).fill(key)
    page.get_by_role("button", name="Use key").click()
    expect(page.locator("#key-state")).to_contain_text("Key accepted")
    expect(page.locator("#endpoint option")).to_have_count(5)


def choose(page: Page, slug: str) -> None:
    page.get_by_label("Endpoint").select_option(slug)
    expect(page.locator("#endpoint-help")).to_contain_text(f"/v2/{slug}")


def record_progress(page: Page) -> None:
    page.evaluate("""() => {
        window.progressSeen = [];
        const text = document.getElementById("job-progress-text");
        new MutationObserver(() => window.progressSeen.push(text.textContent))
            .observe(text, {childList: true, characterData: true, subtree: true});
    }""")


def show_a_frame(page: Page) -> None:
    """Seek into the clip and let the player settle, so that the screenshot shows a frame
    rather than the controls' loading spinner."""
    page.locator("#video").evaluate("""v => new Promise(done => {
        v.addEventListener("seeked", done, {once: true});
        v.currentTime = 2.5;
    })""")
    page.wait_for_timeout(1500)


def job_id(page: Page) -> str:
    expect(page.locator("#job-id")).not_to_have_text("")
    return page.locator("#job-id").inner_text()


def api(server: Server, key: str, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, server.url + path, headers={"x-api-key": key}, timeout=30, **kw)


def wait_done(server: Server, key: str, request_id: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = api(server, key, "GET", f"/v2/requests/{request_id}/status").json()
        if body["status"] in ("COMPLETED", "FAILED"):
            return dict(body)
        time.sleep(0.2)
    raise AssertionError(f"request {request_id} did not finish in {timeout} s")


@pytest.mark.timeout(60)
def test_page_is_served_locally_at_root_and_playground(pg_server: Server) -> None:
    for path in ("/", "/playground"):
        r = httpx.get(pg_server.url + path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "takeone playground" in r.text
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert not re.search(r'(src|href)="(https?:)?//', r.text), "nothing from another origin"
    js = httpx.get(pg_server.url + "/playground/static/js/main.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert httpx.get(pg_server.url + "/playground/static/playground.css").status_code == 200


@pytest.mark.timeout(120)
def test_generate_watch_progress_and_play(page: Page, pg_server: Server, api_key: str,
                                          artifacts: Path) -> None:
    open_playground(page, api_key)
    choose(page, "kling-2.6")
    expect(page.locator("#f-cfg_scale")).to_have_value("0.8")  # the seed's default
    expect(page.locator("#f-generate_audio")).to_be_checked()
    page.get_by_label("Prompt", exact=True).fill("Visual: waves rolling onto a beach at dusk. Audio: surf.")
    page.locator("#f-duration").select_option(label="5")
    page.locator("#f-seed").fill("1234")
    record_progress(page)
    page.get_by_role("button", name="Generate").click()

    request_id = job_id(page)
    expect(page.locator("#job-status")).to_have_text("COMPLETED", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#job-progress-text")).to_have_text("100%")
    assert page.locator("#job-progress").evaluate("p => p.value") == 100
    seen = [int(v.rstrip("%")) for v in page.evaluate("window.progressSeen")]
    assert seen[-1] == 100 and seen == sorted(seen), seen

    page.wait_for_function("document.getElementById('video').readyState >= 2", timeout=30_000)
    duration = page.locator("#video").evaluate("v => v.duration")
    assert abs(duration - 5.0) < 0.25, duration
    src = page.locator("#video").evaluate("v => v.currentSrc")
    assert src.startswith(pg_server.url + "/files/") and request_id in src
    expect(page.get_by_role("link", name="Download the MP4")).to_have_attribute("href", src)
    expect(page.locator('[data-metric="seed"]')).to_have_text("1234")
    expect(page.locator('[data-metric="inference time"]')).to_contain_text(" s")

    first = page.locator(".history-item").first
    expect(first).to_have_attribute("data-request-id", request_id)
    expect(first.locator(".badge")).to_have_text("COMPLETED")
    show_a_frame(page)
    page.screenshot(path=str(artifacts / "playground-desktop.png"), full_page=True)


@pytest.mark.timeout(120)
def test_kling_3_multi_prompt_from_the_form(page: Page, pg_server: Server, api_key: str) -> None:
    """The new routes are in the list, their defaults come from the OpenAPI document, and the
    multi_prompt field takes JSON: three shots play as one clip of their total length."""
    open_playground(page, api_key)
    options = page.locator("#endpoint option").evaluate_all("os => os.map(o => o.value)")
    assert {"kling-2.5-turbo", "kling-3-standard-text2video", "kling-3-pro-text2video"} <= set(options)
    choose(page, "kling-3-pro-text2video")
    expect(page.locator("#f-cfg_scale")).to_have_value("0.5")
    expect(page.locator("#f-duration")).to_have_value("5")
    expect(page.locator("#f-multi_prompt-help")).to_contain_text('"duration":5')
    page.get_by_label("Prompt", exact=True).fill("a short scene")
    page.locator("#f-multi_prompt").fill(
        '[{"prompt": "a door opens", "duration": "2"}, {"prompt": "a hand", "duration": 3},'
        ' {"prompt": "darkness", "duration": "1"}]')
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#job-status")).to_have_text("COMPLETED", timeout=JOB_TIMEOUT_MS)
    page.wait_for_function("document.getElementById('video').readyState >= 2", timeout=30_000)
    duration = page.locator("#video").evaluate("v => v.duration")
    assert abs(duration - 6.0) < 0.25, duration
    page.locator("#f-multi_prompt").fill('[{"prompt": "", "duration": 2}, {"prompt": "b", "duration": 2}]')
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#f-multi_prompt-error")).to_contain_text("multi_prompt")


@pytest.mark.timeout(120)
def test_upload_preview_queue_position_and_cancel(page: Page, pg_server: Server, api_key: str) -> None:
    open_playground(page, api_key)
    choose(page, "kling-2.1")
    page.locator("#f-image-file").set_input_files(
        {"name": "first.png", "mimeType": "image/png", "buffer": png_bytes((320, 240))})
    expect(page.locator("#f-image-note")).to_contain_text("first.png")
    preview = page.get_by_alt_text("Preview of Image", exact=True)
    expect(preview).to_be_visible()
    assert preview.evaluate("img => img.naturalWidth") == 320

    # A job sent just before keeps the one worker busy: the page's job waits in the queue.
    ahead = api(pg_server, api_key, "POST", "/v2/kling-2.6", json={"prompt": "ahead", "duration": 5})
    assert ahead.status_code == 200, ahead.text
    balance = pg_server.balance(api_key)  # the job ahead's price is already taken
    page.get_by_role("button", name="Generate").click()
    request_id = job_id(page)
    expect(page.locator("#job-queue")).to_have_text(re.compile(r"Position \d+ in the queue\."))
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#job-status")).to_have_text("FAILED")
    expect(page.locator("#job-error")).to_have_text("Cancelled: nothing was charged.")
    status = api(pg_server, api_key, "GET", f"/v2/requests/{request_id}/status")
    assert status.status_code == 422 and status.json()["error"] == "cancelled"
    wait_done(pg_server, api_key, ahead.json()["request_id"])
    assert pg_server.balance(api_key) == balance  # nothing charged for the cancelled one
    item = page.locator(f'.history-item[data-request-id="{request_id}"]')
    expect(item.locator(".error")).to_have_text("cancelled")


@pytest.mark.timeout(60)
def test_errors_are_shown_next_to_the_field_the_server_named(page: Page, pg_server: Server,
                                                             api_key: str,
                                                             images: ImageServer) -> None:
    open_playground(page, api_key)
    choose(page, "kling-2.6")
    page.get_by_label("Prompt", exact=True).fill("a fox")
    page.locator("#f-cfg_scale").fill("1.5")
    page.get_by_role("button", name="Generate").click()
    error = page.locator("#f-cfg_scale-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("cfg_scale: ")
    expect(error).to_contain_text("(got 1.5)")
    expect(page.locator("#f-cfg_scale")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-cfg_scale")).to_be_focused()
    expect(page.locator("#form-error")).to_be_hidden()
    expect(page.locator("#job")).to_be_hidden()  # nothing was submitted

    choose(page, "kling-2.1")
    page.locator("#f-image").fill(images.url("/not-an-image.txt"))
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#f-image-error")).to_contain_text("image: ")
    expect(page.locator("#f-prompt-error")).to_be_hidden()

    page.get_by_label("API key", exact=True).fill("tk_not_a_key")
    page.get_by_role("button", name="Use key").click()
    expect(page.locator("#api-key-error")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0  # a refused key is not kept


@pytest.mark.timeout(120)
def test_copy_as_code_runs(page: Page, pg_server: Server, api_key: str, tmp_path: Path) -> None:
    open_playground(page, api_key)
    choose(page, "kling-2.6")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value(EXAMPLE_PROMPT)  # prefilled, as 2.1's
    page.get_by_label("Prompt", exact=True).fill("a fox says \"hi\" and 'bye' for $HOME and `whoami` \\o/")
    page.locator("#f-duration").select_option(label="5")
    page.get_by_role("button", name="Copy as code").click()
    expect(page.get_by_role("button", name="Copy as code")).to_have_attribute("aria-expanded", "true")
    code = {kind: page.locator(f'.snippet[data-kind="{kind}"] code').inner_text()
            for kind in ("requests", "segmind", "curl")}
    assert 'client.run(\n    "kling-2.6",' in code["segmind"] and "duration=5" in code["segmind"]
    env = dict(os.environ, TAKEONE_KEY=api_key)

    done = _run([sys.executable, "-c", code["requests"]], tmp_path, env)
    assert "saved takeone.mp4, seed" in done and (tmp_path / "takeone.mp4").stat().st_size > 1000
    done = _run([sys.executable, "-c", code["segmind"]], tmp_path, env)
    assert done.strip().startswith(pg_server.url + "/files/")
    if shutil.which("curl"):
        answer = _run(["bash", "-c", code["curl"]], tmp_path, env)
        request_id = httpx.Response(200, content=answer).json()["request_id"]
        job = api(pg_server, api_key, "GET", f"/v2/requests/{request_id}").json()
        assert job["status"] != "FAILED"
        history = api(pg_server, api_key, "GET", "/v2/requests?limit=5").json()["requests"]
        sent = next(item for item in history if item["request_id"] == request_id)
        assert sent["params"]["prompt"] == "a fox says \"hi\" and 'bye' for $HOME and `whoami` \\o/"

    # An uploaded image is read from a file of that name (raw base64), in every snippet.
    choose(page, "kling-2.1")
    page.locator("#f-image-file").set_input_files(
        {"name": "first frame.png", "mimeType": "image/png", "buffer": png_bytes((320, 240))})
    expect(page.locator('.snippet[data-kind="curl"] code')).to_contain_text("first frame.png")
    curl = page.locator('.snippet[data-kind="curl"] code').inner_text()
    assert 'image_file("first frame.png")' in page.locator('.snippet[data-kind="requests"] code').inner_text()
    (tmp_path / "first frame.png").write_bytes(png_bytes((320, 240)))
    if shutil.which("curl"):
        answer = _run(["bash", "-c", curl], tmp_path, env)
        assert "request_id" in answer, answer


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=90,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.timeout(120)
def test_history_replays_a_request_into_the_form(page: Page, pg_server: Server, api_key: str,
                                                 images: ImageServer) -> None:
    body = {"image": images.url("/first.jpg"), "image_tail": images.url("/last.png"),
            "prompt": "a slow pan", "mode": "master", "aspect_ratio": "1:1", "duration": 5,
            "cfg_scale": 0.25, "seed": 7}
    sent = api(pg_server, api_key, "POST", "/v2/kling-2.1", json=body)
    assert sent.status_code == 200, sent.text
    request_id = sent.json()["request_id"]
    assert wait_done(pg_server, api_key, request_id)["status"] == "COMPLETED"

    open_playground(page, api_key)  # the form starts on the other endpoint's defaults
    page.get_by_role("button", name=f"Replay request {request_id[:8]} in the form").click()
    expect(page.get_by_label("Endpoint")).to_have_value("kling-2.1")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a slow pan")
    expect(page.locator("#f-mode option:checked")).to_have_text("master")
    expect(page.locator("#f-aspect_ratio option:checked")).to_have_text("1:1")
    expect(page.locator("#f-cfg_scale")).to_have_value("0.25")
    expect(page.locator("#f-seed")).to_have_value("7")
    for field, title, width in (("image", "Image", 640), ("image_tail", "Image Tail", 400)):
        expect(page.locator(f"#f-{field}-note")).to_contain_text(f"{field}-{request_id[:8]}.png")
        preview = page.get_by_alt_text(f"Preview of {title}", exact=True)
        expect(preview).to_be_visible()
        assert preview.evaluate("img => img.naturalWidth") == width

    page.get_by_role("button", name="Generate").click()
    replayed = job_id(page)
    assert replayed != request_id
    expect(page.locator("#job-status")).to_have_text("COMPLETED", timeout=JOB_TIMEOUT_MS)
    expect(page.locator('[data-metric="seed"]')).to_have_text("7")


@pytest.mark.timeout(120)
def test_phone_width_keyboard_and_labels(browser: Any, pg_server: Server, api_key: str,
                                         artifacts: Path) -> None:
    context = browser.new_context(viewport=PHONE, base_url=pg_server.url, is_mobile=True,
                                  has_touch=True, device_scale_factor=2)
    page = context.new_page()
    try:
        open_playground(page, api_key)
        unlabelled = page.evaluate("""() => [...document.querySelectorAll(
            "input, select, textarea, button")].filter(e => !(e.labels && e.labels.length)
            && !e.getAttribute("aria-label") && !(e.tagName === "BUTTON" && e.textContent.trim()))
            .map(e => e.id || e.outerHTML)""")
        assert unlabelled == []
        choose(page, "kling-2.6")
        page.get_by_label("Prompt", exact=True).focus()  # then keyboard only
        page.keyboard.type("a lighthouse in a storm, waves crashing")
        page.keyboard.press("Tab")  # on to the next field
        assert page.evaluate("document.activeElement.id") == "f-negative_prompt"
        page.locator("#f-duration").focus()
        page.keyboard.press("ArrowUp")  # 10 -> 5 in the select
        expect(page.locator("#f-duration option:checked")).to_have_text("5")
        page.get_by_role("button", name="Generate").focus()
        page.keyboard.press("Enter")
        expect(page.locator("#job-status")).to_have_text("COMPLETED", timeout=JOB_TIMEOUT_MS)
        page.wait_for_function("document.getElementById('video').readyState >= 2", timeout=30_000)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        show_a_frame(page)
        assert overflow <= 0, f"the page is {overflow} px wider than a phone"
        page.screenshot(path=str(artifacts / "playground-phone.png"), full_page=True)
    finally:
        context.close()


def wait_hosted(url: str, headers: dict[str, str], done: tuple[str, ...]) -> dict[str, Any]:
    """Poll another dialect's status URL until its status is one of ``done``."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        body = httpx.get(url, headers=headers, timeout=30).json()
        if body["status"] in done:
            return dict(body)
        time.sleep(0.2)
    raise AssertionError(f"{url} did not finish in 90 s")


@pytest.mark.timeout(180)
def test_history_shows_replicate_and_fal_requests(page: Page, pg_server: Server,
                                                  api_key: str) -> None:
    bearer = {"Authorization": f"Bearer {api_key}"}
    made = httpx.post(pg_server.url + "/v1/predictions", headers=bearer, timeout=30, json={
        "version": "kwaivgi/kling-v2.6", "input": {
            "prompt": "a heron lifts off a misty lake", "duration": 5, "aspect_ratio": "9:16",
            "mode": "pro", "generate_audio": False, "seed": 21}})
    assert made.status_code == 201, made.text
    prediction = made.json()
    fal_key = {"Authorization": f"Key {api_key}"}
    queued = httpx.post(pg_server.url + "/fal/fal-ai/ltx-2/text-to-video/fast", headers=fal_key,
                        timeout=30, json={"prompt": "neon rain on a city street", "duration": 6})
    assert queued.status_code == 200, queued.text
    fal_id = queued.json()["request_id"]
    assert wait_hosted(prediction["urls"]["get"], bearer, ("succeeded", "failed"))["status"] == "succeeded"
    assert wait_hosted(queued.json()["status_url"], fal_key, ("COMPLETED",)).get("error") is None

    open_playground(page, api_key)
    heron = page.locator(".history-item", has_text="a heron lifts off a misty lake")
    rain = page.locator(f'.history-item[data-request-id="{fal_id}"]')
    expect(heron).to_have_attribute("data-dialect", "replicate")
    expect(heron.locator(".badge").first).to_have_text("COMPLETED")
    expect(heron.locator(".dialect-tag")).to_have_text("Replicate")
    expect(heron.locator("strong")).to_have_text("kwaivgi/kling-v2.6")
    expect(heron.locator(".history-route")).to_have_text("POST /v1/predictions")
    expect(heron).to_contain_text("5 s · 9:16 · mode pro · seed 21")
    expect(rain.locator(".dialect-tag")).to_have_text("fal queue")
    expect(rain.locator(".history-route")).to_have_text("POST /fal/fal-ai/ltx-2/text-to-video/fast")
    expect(rain).to_contain_text("neon rain on a city street")
    expect(rain.get_by_role("button", name=re.compile("^Open"))).to_be_hidden()
    for item in (heron, rain):  # the MP4 each made, from a signed link
        href = item.get_by_role("link", name=re.compile("^Video of request")).get_attribute("href")
        assert href is not None and href.startswith(pg_server.url + "/files/")
        video = httpx.get(href, timeout=30)
        assert video.status_code == 200 and video.content[4:8] == b"ftyp"

    # Replicate's kling-v2.6 "pro" is Segmind's kling-2.6 form, filled in as it was sent.
    heron.get_by_role("button", name=re.compile("^Replay")).click()
    expect(page.get_by_label("Endpoint")).to_have_value("kling-2.6")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a heron lifts off a misty lake")
    expect(page.locator("#f-aspect_ratio option:checked")).to_have_text("9:16")
    expect(page.locator("#f-duration option:checked")).to_have_text("5")
    expect(page.locator("#f-generate_audio")).not_to_be_checked()
    expect(page.locator("#f-seed")).to_have_value("21")
    expect(page.locator("#announce")).to_contain_text("made through Replicate, as kling-2.6")
    # LTX-2 fast text to video of 6 s is Kling 3 Standard's form (fast tier, any whole second);
    # a request no form makes is explained instead (the unit tests cover that answer).
    rain.get_by_role("button", name=re.compile("^Replay")).click()
    expect(page.get_by_label("Endpoint")).to_have_value("kling-3-standard-text2video")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("neon rain on a city street")
    expect(page.locator("#announce")).to_contain_text("made through fal queue, as kling-3-standard-text2video")


@pytest.mark.timeout(240)
def test_copy_as_code_for_replicate_fal_and_runpod_runs(page: Page, pg_server: Server, api_key: str,
                                                        tmp_path: Path) -> None:
    open_playground(page, api_key)
    choose(page, "kling-2.6")
    page.get_by_label("Prompt", exact=True).fill("a paper boat drifts down a gutter")
    page.locator("#f-duration").select_option(label="5")
    page.locator("#f-aspect_ratio").select_option(label="1:1")
    page.locator("#f-seed").fill("77")
    page.get_by_role("button", name="Copy as code").click()
    kinds = ("replicate", "fal", "runpod")
    code = {kind: page.locator(f'.snippet[data-kind="{kind}"] code').inner_text() for kind in kinds}
    assert 'client.run("kwaivgi/kling-v2.6"' in code["replicate"]
    assert 'fal_client.subscribe("fal-ai/kling-video/v2.6/pro/text-to-video"' in code["fal"]
    assert "# fal's Kling takes no seed: left out." in code["fal"]
    assert 'runpod.Endpoint("standard"' in code["runpod"]
    env = dict(os.environ, TAKEONE_API_KEY=api_key, TAKEONE_KEY=api_key)
    env.pop("FAL_QUEUE_RUN_HOST", None)

    for kind in kinds:  # each prints the MP4's link first
        printed = _run([sys.executable, "-c", code[kind]], tmp_path, env)
        assert printed.strip().startswith(pg_server.url + "/files/"), (kind, printed)
    history = api(pg_server, api_key, "GET", "/v2/requests?limit=3").json()["requests"]
    assert sorted(item["dialect"] for item in history) == sorted(kinds)
    for item in history:  # the same video as the form's: each replays into it
        assert item["status"] == "COMPLETED" and item["replay_endpoint"] == "kling-2.6", item
        assert item["params"]["prompt"] == "a paper boat drifts down a gutter"
        assert item["params"]["aspect_ratio"] == "1:1" and item["params"]["duration"] == 5
    assert {item["dialect"]: item["seed"] for item in history if item["dialect"] != "fal"} == {
        "replicate": 77, "runpod": 77}

    # An uploaded first frame travels as each client takes files.
    choose(page, "kling-2.1")
    page.locator("#f-image-file").set_input_files(
        {"name": "first.png", "mimeType": "image/png", "buffer": png_bytes((320, 240))})
    expect(page.locator('.snippet[data-kind="runpod"] code')).to_contain_text('image_file("first.png")')
    code = {kind: page.locator(f'.snippet[data-kind="{kind}"] code').inner_text() for kind in kinds}
    assert '"start_image": open("first.png", "rb")' in code["replicate"]
    assert 'file_encoding_strategy="base64"' in code["replicate"]
    assert '"image_url": fal_client.encode_file("first.png")' in code["fal"]
    assert "fal-ai/kling-video/v2.1/pro/image-to-video" in code["fal"]


@pytest.mark.timeout(150)
def test_a_lora_picked_from_the_keys_list_runs_with_the_job(page: Page, pg_server: Server, api_key: str,
                                                           tmp_path: Path) -> None:
    """The LoRA field lists what GET /v1/loras gives the key; the job runs with the chosen
    LoRA and scale, and the status answer and the page both name it."""
    import uuid

    from takeone.cli.main import main
    from tests.support.loras import make_lora

    name = "cel-" + uuid.uuid4().hex[:6]
    path = make_lora(tmp_path / "cel.safetensors", seed=4)
    assert main(["loras", "add", name, str(path), "--profile", "tiny", "--surcharge", "0.2",
                 "--data-dir", str(pg_server.data_dir)]) == 0
    page.goto("/")
    expect(page.locator("#f-loras-note")).to_contain_text("Use a key")
    expect(page.get_by_role("button", name="Add a LoRA")).to_be_disabled()
    open_playground(page, api_key)
    choose(page, "kling-2.6")
    expect(page.locator("#f-loras-note")).to_contain_text("up to 4 per request")
    page.get_by_role("button", name="Add a LoRA").click()
    picker = page.get_by_label("LoRA", exact=True)
    expect(picker).to_be_focused()
    expect(picker.locator(f'option[value="{name}"]')).to_have_text(f"{name} (+0.2 credits)")
    picker.select_option(name)
    page.get_by_label("Scale", exact=True).fill("3")  # out of range: the server names the field
    page.get_by_label("Prompt", exact=True).fill("a paper fox")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#f-loras-error")).to_contain_text("loras[0].scale")
    page.get_by_label("Scale", exact=True).fill("0.7")
    page.get_by_role("button", name="Generate").click()

    request_id = job_id(page)
    expect(page.locator("#job-status")).to_have_text("COMPLETED", timeout=JOB_TIMEOUT_MS)
    expect(page.locator('[data-metric="loras"]')).to_have_text(f"{name} at 0.7")
    status = api(pg_server, api_key, "GET", f"/v2/requests/{request_id}/status").json()
    assert status["metrics"]["loras"] == [{"name": name, "scale": 0.7}]
    item = page.locator(f'.history-item[data-request-id="{request_id}"]')
    expect(item).to_contain_text(f"LoRAs {name}")
    page.get_by_role("button", name="Reset to defaults").click()
    expect(page.locator(".lora-row")).to_have_count(0)
    item.get_by_role("button", name="Replay").click()  # the LoRA comes back into the form
    expect(page.get_by_label("LoRA", exact=True)).to_have_value(name)
    expect(page.get_by_label("Scale", exact=True)).to_have_value("0.7")
