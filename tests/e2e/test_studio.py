"""The studio in a real browser (Debian's chromium, driven by Playwright) against a real `opusclip serve`
and `opusclip worker` on Postgres and Redis: sign in, submit, follow, play, rate, download, page through
jobs, cancel; a wrong token and a hostile clip title. Any console error fails a test.

Screenshots at 375 px and 1280 px go to the test's output folder; with UPDATE_SCREENSHOTS=1 the desktop one
also replaces docs/studio.png (the README's picture).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from playwright.sync_api import Browser, Page, Route, ViewportSize, expect, sync_playwright

from adapters.media.synthetic import make_sample
from tests.e2e.service import (
    Client,
    Proc,
    fresh_database,
    query,
    service_env,
    start_api,
    start_worker,
    token,
)

DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "studio.png"
HOSTILE_TITLE = '<img src=x onerror="window.__pwned = 1">Best <b>bit</b>'
NOWHERE = "http://127.0.0.1:9/{}.mp4"  # never fetched: these jobs are cancelled while no worker runs
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 375, "height": 812}
WAIT_MS = 180_000
UNLABELLED = """() => [...document.querySelectorAll("button, input, select, textarea, video")]
  .filter((el) => el.checkVisibility() || el.id === "file")
  .filter((el) => !(el.labels?.length || el.getAttribute("aria-label") || el.textContent.trim()))
  .map((el) => el.outerHTML.slice(0, 80))"""
# The focused element and its focus outline (a visually hidden file input shows it on its label).
FOCUS = """() => {
  const el = document.activeElement;
  const shown = el.id === "file" ? el.labels[0] : el;
  const outline = getComputedStyle(shown).outlineStyle;
  return { tag: el.tagName, id: el.id, text: el.textContent.trim(), outline };
}"""
RECORD_TEXTS = """ids => {
  window.__texts = {};
  for (const id of ids) {
    const element = document.getElementById(id);
    const texts = (window.__texts[id] = []);
    new MutationObserver(() => texts.push(element.textContent)).observe(element, {
      childList: true, characterData: true, subtree: true,
    });
  }
}"""


@attrs.define
class Stack:
    api: Proc
    root: Path
    database_url: str
    workers: list[Proc] = attrs.field(factory=list)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("studio")
    with fresh_database() as database_url:
        env = service_env(database_url, root)
        api = start_api(env, root)
        stack = Stack(api, root, database_url)
        try:
            yield stack
        finally:
            codes = [proc.stop() for proc in (*stack.workers, api)]
            assert all(code == 0 for code in codes[:-1]), [w.output[-2000:] for w in stack.workers]


@pytest.fixture(scope="module")
def worker(stack: Stack) -> Proc:
    """Started only by the tests that need jobs to run: the others cancel queued jobs no worker can take."""
    proc = start_worker(service_env(stack.database_url, stack.root), stack.root)
    stack.workers.append(proc)
    return proc


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Browser]:
    # After the stack: Playwright's sync API keeps an event loop running in this thread, where
    # fresh_database() could not start its own.
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is not installed: `make install` installs it"
    with sync_playwright() as playwright:
        # --no-sandbox: test machines and containers often run as root, where chromium's sandbox cannot start.
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@attrs.define
class Tab:
    page: Page
    errors: list[str]
    base: str

    def sign_in(self, bearer: str) -> None:
        self.page.goto(self.base)
        self.page.get_by_label("Access token").fill(bearer)
        self.page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def tab(browser: Browser, stack: Stack) -> Iterator[Tab]:
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    try:
        yield Tab(page, errors, stack.api.url + "/")
    finally:
        context.close()


def test_a_wrong_token_shows_the_sign_in_message(tab: Tab) -> None:
    tab.sign_in(token("mallory")[:-4] + "AAAA")  # a forged signature
    expect(tab.page.locator("#sign-in-error")).to_contain_text("token was not accepted")
    expect(tab.page.get_by_label("Access token")).to_be_focused()
    expect(tab.page.locator("#studio")).to_be_hidden()
    # The one error the console may show here is the browser noting the 401 itself.
    assert [e for e in tab.errors if "status of 401" not in e] == [], tab.errors


def test_queued_jobs_page_newest_first_cancel_and_stay_private(tab: Tab, stack: Stack) -> None:
    alice, bob = Client(stack.api.url, "pager"), Client(stack.api.url, "bob")
    for i in range(10):
        job_id = alice.submitted(NOWHERE.format(f"old-{i:02d}"))
        assert alice.http.delete(f"/v1/jobs/{job_id}").status_code == 200
    bob.submitted(NOWHERE.format("bobs-secret"))

    tab.sign_in(token("pager"))
    expect(tab.page.locator("#who")).to_have_text("Signed in as pager")
    tab.page.get_by_label("Or a video URL").fill(NOWHERE.format("newest"))
    tab.page.get_by_role("button", name="Make clips").click()
    expect(tab.page.locator("#job-title")).to_have_text(NOWHERE.format("newest"))
    expect(tab.page.locator("#job-stage")).to_contain_text("Queued")
    tab.page.get_by_role("button", name="Cancel job").click()
    expect(tab.page.locator("#job-stage")).to_have_text("Cancelled")

    names = tab.page.locator("#job-list .job-name")
    expect(names).to_have_count(10)
    expect(names.first).to_have_text(NOWHERE.format("newest"))
    expect(names.nth(1)).to_have_text(NOWHERE.format("old-09"))
    tab.page.get_by_role("button", name="Older →").click()
    expect(names).to_have_text([NOWHERE.format("old-00")])
    expect(tab.page.get_by_role("button", name="Older →")).to_be_disabled()
    tab.page.get_by_role("button", name="← Newer").click()
    expect(names.first).to_have_text(NOWHERE.format("newest"))
    assert "bobs-secret" not in tab.page.locator("#job-list").inner_text()
    assert tab.errors == []


def test_api_errors_and_the_upload_limit_show_next_to_the_form(
    tab: Tab, stack: Stack, tmp_path: Path
) -> None:
    page = tab.page
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    tab.sign_in(token("carol"))
    page.get_by_label("Or a video URL").fill("ftp://example.com/talk.mp4")
    page.get_by_role("button", name="Make clips").click()
    expect(page.locator("#submit-error")).to_contain_text("Please check what you entered: only http")
    assert [e for e in tab.errors if "status of 422" not in e] == [], tab.errors

    # A file over the service's limit is refused in the page, before a byte is sent.
    def small_limit(route: Route) -> None:
        config = route.fetch().json()
        route.fulfill(json={**config, "max_upload_bytes": 1000})

    page.route("**/studio/config.json", small_limit)
    page.reload()
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * 5000)
    posts.clear()
    page.get_by_label("Choose a video file").set_input_files(str(big))
    page.get_by_role("button", name="Make clips").click()
    expect(page.locator("#submit-error")).to_have_text(
        "big.mp4 is 4.9 KB, over the upload limit of 1000 bytes."
    )
    assert posts == []


def test_upload_follow_play_rate_download(tab: Tab, stack: Stack, worker: Proc, tmp_path: Path) -> None:
    page = tab.page
    talk = tmp_path / "talk.mp4"
    make_sample(talk, 40)

    tab.sign_in(token("alice"))
    page.get_by_label("Choose a video file").set_input_files(str(talk))
    expect(page.locator("#file-chosen")).to_contain_text("talk.mp4")
    page.get_by_label("How many").fill("2")
    page.get_by_label("Shortest (s)").fill("4")
    page.get_by_label("Longest (s)").fill("12")
    page.get_by_label("Shape").select_option("9:16")
    page.evaluate(RECORD_TEXTS, ["upload-percent", "job-stage"])
    page.get_by_role("button", name="Make clips").click()

    expect(page.locator("#job-title")).to_have_text("talk.mp4")
    expect(page.locator("#job-stage")).to_have_text("Done", timeout=WAIT_MS)
    seen = page.evaluate("window.__texts")
    assert "100%" in seen["upload-percent"], seen
    assert any(text.startswith("Working · ") for text in seen["job-stage"]), seen
    cards = page.locator("#clips > li")
    expect(cards.first).to_be_visible()
    job_id = page.evaluate("new URLSearchParams(location.hash.slice(1)).get('job')")

    # The plot: one band per clip; pressing the first plays clip 1 in its card.
    expect(page.locator("#plot")).to_be_visible()
    expect(page.locator("#plot .band-button")).to_have_count(cards.count())
    assert page.locator("#plot path.curve").get_attribute("d")
    page.get_by_role("button", name="Play clip 1", exact=False).focus()
    page.keyboard.press("Enter")
    video = cards.first.locator("video")
    page.wait_for_function(
        "video => video.currentTime > 0.5 && !video.paused", arg=video.element_handle(), timeout=30_000
    )
    assert cards.first.locator(".frame").get_attribute("class") == "frame tall"

    clip_id = (cards.first.get_attribute("id") or "").removeprefix("clip-")
    cards.first.get_by_role("button", name="Keep").click()
    expect(cards.first.get_by_role("button", name="Keep")).to_have_attribute("aria-pressed", "true")
    expect(cards.first.locator(".rated")).to_have_text("You kept this clip.")
    rows = _query(stack, "SELECT rater, rating FROM feedback WHERE clip_id = $1", clip_id)
    assert [(r["rater"], r["rating"]) for r in rows] == [("alice", 1)]

    with page.expect_download() as download:
        cards.first.get_by_role("button", name="SRT").click()
    assert download.value.suggested_filename == "clip_01.srt"
    assert " --> " in Path(download.value.path()).read_text()

    expect(page.locator("#job-list .job-item").first).to_contain_text("Done")
    out = tmp_path / "screenshots"
    out.mkdir()
    page.evaluate("document.querySelectorAll('video').forEach(v => v.pause())")
    page.screenshot(path=str(out / "studio-1280.png"), full_page=True)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":  # a test run leaves the checkout as it found it
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(out / "studio-1280.png", DOCS_SCREENSHOT)
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "no sideways scrolling"
    page.screenshot(path=str(out / "studio-375.png"), full_page=True)
    page.set_viewport_size(DESKTOP)

    # A title planted in the database comes back as text: no element made of it, no script run.
    _query(stack, "UPDATE clips SET title = $1 WHERE id = $2", HOSTILE_TITLE, clip_id)
    page.reload()
    expect(cards.first.locator("h3 .title")).to_have_text(HOSTILE_TITLE)
    assert page.locator("#clips img, #clips b").count() == 0
    assert page.evaluate("window.__pwned") is None

    # Every control has a label and shows where the keyboard focus is.
    assert page.evaluate(UNLABELLED) == []
    page.locator("body").focus()
    focused = []
    for _ in range(45):
        page.keyboard.press("Tab")
        focused.append(page.evaluate(FOCUS))
    assert {"file", "url", "max-clips", "aspect", "burn-captions", "submit-button", "sign-out"} <= {
        f["id"] for f in focused
    }
    assert any(f["text"] == "Keep" for f in focused) and any(f["text"] == "SRT" for f in focused)
    # Tabbing past the last control leaves the page (BODY); a video draws focus on its own controls.
    assert [f for f in focused if f["tag"] not in ("BODY", "VIDEO") and f["outline"] == "none"] == []

    alice, bob = Client(stack.api.url, "alice"), Client(stack.api.url, "bob")
    scores = alice.http.get(f"/v1/jobs/{job_id}/scores")
    assert scores.status_code == 200 and len(scores.json()["scores"]) == 40
    assert bob.http.get(f"/v1/jobs/{job_id}/scores").status_code == 404
    assert tab.errors == [], tab.errors


def _query(stack: Stack, sql: str, *args: Any) -> list[Any]:
    """On a thread of its own: Playwright's event loop runs in this one."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, query(stack.database_url, sql, *args)).result()
