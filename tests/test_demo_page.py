"""The /demo page end to end in headless Chromium (Debian's package, driven by Playwright): upload a
photo, wait for every service, check that each result image rendered; screenshots are kept in
test-artifacts/ (docs/img/demo.png in the README is one of them)."""

import re
import shutil

import pytest

from tests.conftest import ARTIFACTS
from tests.images import encode

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CARDS = ("parsing", "cutout", "skin", "pose", "transfer")


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.fail("Debian's chromium is missing: `make test` installs it (make system-deps)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


def rendered(page, card: str) -> dict:
    """What one result card shows: its images' natural sizes, its time, its quality and review flag,
    and its error text."""
    return page.evaluate(
        """(id) => {
        const card = document.getElementById(`card-${id}`);
        return {sizes: [...card.querySelectorAll("img.result")].map(i => [i.complete, i.naturalWidth, i.naturalHeight]),
                ms: card.querySelector(".ms").textContent, error: card.querySelector(".error").textContent,
                quality: card.querySelector(".quality").textContent, flag: card.querySelector(".flag").textContent};
    }""",
        card,
    )


def run_page(page, timeout_ms: int = 120_000):
    page.evaluate("delete document.body.dataset.done")
    page.click("#run")
    page.wait_for_selector("body[data-done=true]", timeout=timeout_ms)
    page.wait_for_function("[...document.querySelectorAll('img.result')].every(i => i.complete)", timeout=timeout_ms)


def test_demo_page_shows_every_result(stack, browser, photo, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    path = tmp_path / "photo.jpg"
    path.write_bytes(encode(photo))
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(stack.service_url("segmentation") + "/demo")
    page.set_input_files("#photo", str(path))
    page.select_option("#preset", "Arms out")
    run_page(page)
    page.screenshot(path=str(ARTIFACTS / "demo.png"), full_page=True)
    for card in CARDS:
        shown = rendered(page, card)
        assert shown["error"] == "", f"{card}: {shown['error']}"
        assert shown["sizes"] and all(ok and w > 0 and h > 0 for ok, w, h in shown["sizes"]), (card, shown)
        assert shown["ms"].endswith(" ms"), (card, shown)
        assert re.fullmatch(r"quality (0\.\d\d|1\.00)", shown["quality"]), (card, shown)
        assert shown["flag"] in ("ok", "needs review"), (card, shown)
    # the result images have the photo's size (the preset pose has its own canvas: 352×512)
    h, w = photo.shape[:2]
    for card in ("parsing", "cutout", "skin", "pose"):
        assert all((cw, ch) == (w, h) for _, cw, ch in rendered(page, card)["sizes"]), card
    assert rendered(page, "transfer")["sizes"][0][1:] == [352, 512]
    assert errors == []

    # the pose of a second photo: the output takes that photo's size
    target = tmp_path / "target.jpg"
    target.write_bytes(encode(photo[:, ::-1][: h * 3 // 4]))
    page.select_option("#preset", "From a second photo")
    page.set_input_files("#target", str(target))
    run_page(page)
    assert rendered(page, "transfer")["sizes"][0][1:] == [w, h * 3 // 4]
    page.screenshot(path=str(ARTIFACTS / "demo-second-photo.png"), full_page=True)
    page.close()


def test_demo_page_reports_a_bad_upload(stack, browser, tmp_path):
    bad = tmp_path / "not-an-image.jpg"
    bad.write_bytes(b"this is not a JPEG")
    page = browser.new_page()
    page.goto(stack.service_url("segmentation") + "/demo")
    page.set_input_files("#photo", str(bad))
    run_page(page)
    for card in CARDS:
        shown = rendered(page, card)
        assert shown["error"].startswith("415") and shown["quality"] == shown["flag"] == "", card
    page.close()
