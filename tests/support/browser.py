"""Open a page in headless Chromium and collect what a user would see break: console errors and broken media.

Reports and the dashboard promise to work offline in a browser; only a real browser checks that. Debian's
`chromium` is driven by Playwright through `executable_path` (Playwright's own browser download needs the
internet). Tests skip with a reason when the browser is missing locally and fail under CI, which installs it
(`make system-deps`).

    with open_page(url_or_path, screenshot=artifacts / "report.png") as page:
        page.click("text=Confusion")
    # leaving the block raises BrowserProblems if any console error, page error or broken image/video occurred
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

ARTIFACTS = Path(os.environ.get("FORWARDLAB_TEST_ARTIFACTS", "test-artifacts"))

_BROKEN_MEDIA = """() => {
  const bad = [];
  for (const img of document.images) {
    if (!(img.complete && img.naturalWidth > 0)) bad.push('img ' + img.currentSrc);
  }
  for (const v of document.querySelectorAll('video')) {
    if (v.error) bad.push('video ' + v.currentSrc + ' error ' + v.error.code);
  }
  return bad;
}"""


class BrowserProblems(AssertionError):
    """The page logged errors or showed broken media."""


def chromium_path() -> str:
    """Path of the system Chromium, or skip the calling test with a reason."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    reason = "headless Chromium is not installed (make system-deps installs Debian's chromium)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@contextlib.contextmanager
def open_page(
    target: str | Path,
    *,
    screenshot: Path | None = None,
    headers: dict[str, str] | None = None,
    viewport: tuple[int, int] = (1400, 1000),
) -> Iterator[object]:
    """Load `target` (URL or file path), yield the Playwright page, then fail on any problem seen.

    The screenshot is saved even when the page has problems, so a failing run leaves evidence behind.
    """
    sync_api = pytest.importorskip("playwright.sync_api")
    url = target.resolve().as_uri() if isinstance(target, Path) else target
    problems: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            context = browser.new_context(
                viewport={"width": viewport[0], "height": viewport[1]}, extra_http_headers=headers or {}
            )
            page = context.new_page()
            page.on(
                "console",
                lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None,
            )
            page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
            page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url} ({req.failure})"))
            page.goto(url)
            page.wait_for_load_state("networkidle")
            yield page
            page.wait_for_load_state("networkidle")
            problems.extend(page.evaluate(_BROKEN_MEDIA))
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    if problems:
        raise BrowserProblems(f"{url}: " + "; ".join(problems))
