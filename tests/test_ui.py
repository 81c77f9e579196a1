"""The admin UI (admin-ui/out, served at /ui/) in real Chromium against a real Beacon."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import IN_CI, ROOT, TOKEN, Beacon, eventually, make_config, need_binary, running_beacon
from faultproxy import FaultProxy
from playwright.async_api import Browser, Locator, Page, Route, async_playwright, expect

from app.config import RealtimeConfig
from app.rest.ui import find_file

UI_DIR = ROOT / "admin-ui" / "out"
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDTHS = (1280, 390)

expect.set_options(timeout=15_000)


def need_ui() -> Path:
    """The built static export; missing fails in CI (the Makefile builds it) and skips locally."""
    if (UI_DIR / "index.html").is_file():
        return UI_DIR
    message = "admin-ui/out is missing: run `make ui` (npm ci + npm run build in admin-ui/)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class UI:
    beacon: Beacon
    browser: Browser
    errors: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.beacon.rest + path

    async def page(self, width: int = 1280, login: bool = True) -> Page:
        context = await self.browser.new_context(viewport={"width": width, "height": 900 if width > 600 else 844})
        if login:  # as if logged in through the start-up URL: the token is in the tab's sessionStorage
            await context.add_init_script(f"sessionStorage.setItem('beacon.token', {TOKEN!r})")
        page = await context.new_page()
        page.set_default_timeout(15_000)
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        return page


@pytest.fixture
async def ui(tmp_path: Path) -> AsyncIterator[UI]:
    chromium = need_binary("chromium")
    ui_dir = need_ui()
    # Both listeners on ports picked at bind time and the default origins: /ui/config.json names
    # the bound realtime port, and the page's own origin is allowed.
    cfg = make_config(tmp_path, **{"rest.ui_dir": str(ui_dir)})
    async with running_beacon(cfg) as beacon, async_playwright() as pw:
        status, _ = await beacon.call("GET", "/ui/config.json")
        assert status == 200, "the REST app does not serve the UI: create_rest_app must call setup_ui"
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        ui = UI(beacon, browser)
        try:
            yield ui
        finally:
            await browser.close()
    assert not ui.errors, f"uncaught errors in the page: {ui.errors}"


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"] if page.viewport_size else 0
    await page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)


async def log_seqs(page: Page) -> list[int]:
    """Every `seq` the virtualized log holds, in display order, read by scrolling it top to bottom."""
    pairs = await page.evaluate(
        """async () => {
          const box = document.querySelector('.log');
          const seen = new Map();
          const frame = () => new Promise((r) => requestAnimationFrame(r));
          const rows = () => [...box.querySelectorAll('.line')];
          const rendered = (top) => {
            const bottom = Math.min(top + box.clientHeight, box.scrollHeight) - 20;
            return rows().some((el) => el.offsetTop <= top) && rows().some((el) => el.offsetTop >= bottom);
          };
          const height = box.style.height;
          box.style.height = '12000px';  // 600 rows a screen: fewer steps, same rendering path
          box.scrollTop = 0;
          for (;;) {
            // Rows render after the scroll event: wait until the one at the top is there.
            for (let i = 0; i < 120 && !rendered(box.scrollTop); i++) await frame();
            rows().forEach((el) => seen.set(+el.dataset.index, +el.dataset.seq));
            if (box.scrollTop + box.clientHeight >= box.scrollHeight - 1) break;
            box.scrollTop += box.clientHeight + 200;  // rows overscan 400 px past each edge
          }
          box.style.height = height;
          return [...seen.entries()].sort((a, b) => a[0] - b[0]);
        }"""
    )
    assert [i for i, _ in pairs] == list(range(len(pairs))), "the log skipped rows"
    return [seq for _, seq in pairs]


async def stored_last_seq(beacon: Beacon, thread_id: str) -> int:
    status, body = await beacon.call("GET", f"/admin/runs/{thread_id}/logs?limit=1")
    assert status == 200, body
    return int(body["last_seq"])


async def stored_after(beacon: Beacon, thread_id: str, text: str) -> int | None:
    """The stored last seq once a line `text` is stored (the newest 100 lines are looked at)."""
    last = await stored_last_seq(beacon, thread_id)
    status, body = await beacon.call("GET", f"/admin/runs/{thread_id}/logs?after={max(0, last - 100)}")
    assert status == 200, body
    return last if any(line["text"] == text for line in body["lines"]) else None


def conn(page: Page) -> Locator:
    return page.locator(".conn")


# -- the server hook, without a browser -------------------------------------------------------


async def test_ui_routes(tmp_path: Path) -> None:
    ui_dir = tmp_path / "out"
    (ui_dir / "run").mkdir(parents=True)
    (ui_dir / "index.html").write_text("<p>runs</p>")
    (ui_dir / "run" / "index.html").write_text("<p>run</p>")
    (ui_dir / "about.html").write_text("<p>about</p>")
    (tmp_path / "secret.txt").write_text("no")
    cfg = make_config(tmp_path, **{"rest.ui_dir": str(ui_dir)})  # realtime on port 0: the bound one is named
    async with running_beacon(cfg) as beacon:
        realtime_port = beacon.running.realtime_port
        for path, body in (("/ui/", "runs"), ("/ui/run/", "run"), ("/ui/run", "run"), ("/ui/about", "about")):
            async with beacon.http.get(beacon.rest + path) as resp:
                assert resp.status == 200 and body in await resp.text(), path
                assert resp.headers["Cache-Control"] == "no-cache"
        for path in ("/", "/ui", "/?rt=7001"):
            async with beacon.http.get(beacon.rest + path, allow_redirects=False) as resp:
                assert resp.status == 302
                assert resp.headers["Location"] == "/ui/" + path.partition("?")[1] + path.partition("?")[2]
        status, body = await beacon.call("GET", "/ui/config.json")
        assert status == 200 and body == {"socketio_port": realtime_port}
        for path in ("/ui/nope", "/ui/..%2fsecret.txt", "/ui/%2e%2e/secret.txt"):
            status, body = await beacon.call("GET", path)
            assert status == 404 and body["error"] == "not_found", path
    assert find_file(ui_dir, "../secret.txt") is None
    assert find_file(ui_dir, "/etc/passwd") is None
    assert find_file(ui_dir, "run\x00") is None


async def test_ui_not_built_is_a_clear_404(tmp_path: Path) -> None:
    async with running_beacon(make_config(tmp_path, **{"rest.ui_dir": str(tmp_path / "missing")})) as beacon:
        status, body = await beacon.call("GET", "/ui/")
        assert status == 404 and body["message"] == "the admin UI is not built"


# -- in Chromium --------------------------------------------------------------------------------


async def test_start_watch_approve_complete(ui: UI) -> None:
    """Start from the form, watch the log, approve with a comment, see it complete: no reload."""
    page = await ui.page()
    await page.goto(ui.url("/ui/start/"))
    await page.evaluate("window.__sameDocument = true")
    await expect(conn(page)).to_have_attribute("data-state", "connected")
    await expect(page.locator("#workflow")).to_have_value("review")

    # The server's 422 field messages show next to the input.
    await page.fill("#input", '{"delay": 0.3}')
    await page.get_by_role("button", name="Start run").click()
    await expect(page.locator("#input-errors")).to_contain_text("topic: Missing data for required field.")
    await expect(page.locator("#input")).to_have_attribute("aria-invalid", "true")
    await page.fill("#input", "{not json")
    await expect(page.locator("#input-errors")).to_contain_text("Not valid JSON")
    await expect(page.get_by_role("button", name="Start run")).to_be_disabled()

    topic = "Q3 <b>report</b> <img src=x onerror=window.__xss=1>"
    await page.fill("#input", f'{{"topic": "{topic}", "delay": 0.3}}')
    await page.get_by_role("button", name="Start run").click()
    await expect(page).to_have_url(re.compile(r"/ui/run/\?id=\w+"))
    thread_id = page.url.split("id=")[1]

    log = page.locator(".log")
    await expect(log).to_contain_text(f"Drafting revision 1 about '{topic}'")
    badge = page.locator(".runhead .badge")
    await expect(badge).to_have_text("waiting for approval")
    approval = page.locator(".approval")
    await expect(approval).to_contain_text("Publish this draft?")
    await expect(page.locator(".timeline li").first).to_contain_text("ask_reviewer")
    await expect(page.locator(".json.state")).to_contain_text('"revision": 1')
    await shot(page, "run-detail-waiting")

    await approval.get_by_label("Comment").fill("ship it")
    await approval.get_by_role("button", name="Approve…").click()
    await approval.get_by_role("button", name="Yes, approve").click()
    await expect(page.locator(".notices")).to_contain_text("Approved — the run continues.")
    await expect(badge).to_have_text("completed")
    await expect(log).to_contain_text("run completed")
    await expect(page.locator(".decisions")).to_contain_text("ship it")
    await expect(page.locator(".timeline li").first).to_contain_text("→ end")
    await expect(page.locator(".notices")).not_to_contain_text("Someone else")  # the event was this page's own
    await shot(page, "run-detail-completed")

    assert await page.evaluate("window.__sameDocument") is True, "the page reloaded"
    assert await page.evaluate("window.__xss") is None
    assert await log.locator("b, img").count() == 0, "log text was rendered as HTML"
    done = await ui.beacon.status(thread_id)
    assert done["status"] == "completed" and done["decisions"][0]["comment"] == "ship it"
    assert await log_seqs(page) == list(range(1, await stored_last_seq(ui.beacon, thread_id) + 1))


async def test_console_goes_live_on_the_port_rest_bound(ui: UI) -> None:
    """No origins configured, REST on port 0: the Socket.IO handshake is accepted and lines arrive live."""
    beacon = ui.beacon
    assert beacon.cfg.rest.port == 0 and beacon.cfg.realtime.cors_origins == RealtimeConfig().cors_origins
    thread_id = await beacon.start("deploy", {"step_delay": 0.1, "lines_per_step": 2})
    await beacon.wait_status(thread_id, "waiting_approval")
    page = await ui.page()
    await page.goto(ui.url(f"/ui/run/?id={thread_id}"))
    await expect(conn(page)).to_have_attribute("data-state", "connected")
    log = page.locator(".log")
    await expect(log).to_contain_text("waiting for approval")
    await beacon.call("POST", f"/approve/{thread_id}", {"decision": "approve"})
    await expect(log).to_contain_text("step verify done")  # logged after the page loaded: it came live
    await expect(page.locator(".runhead .badge")).to_have_text("completed")


async def test_someone_else_decided_409(ui: UI) -> None:
    beacon = ui.beacon
    thread_id = await beacon.start("review", {"topic": "pricing", "delay": 0})
    await beacon.wait_status(thread_id, "waiting_approval")
    page = await ui.page(390)
    await page.goto(ui.url(f"/ui/run/?id={thread_id}"))
    approval = page.locator(".approval")
    await expect(approval).to_contain_text("Publish this draft?")

    async def other_reviewer_first(route: Route) -> None:
        # A second reviewer's decision lands between the click and this page's request.
        status, _ = await beacon.call("POST", f"/approve/{thread_id}", {"decision": "reject", "comment": "not yet"})
        assert status == 200
        await route.continue_()

    await page.route("**/approve/**", other_reviewer_first)
    await approval.get_by_role("button", name="Approve…").click()
    await approval.get_by_role("button", name="Yes, approve").click()
    notices = page.locator(".notices")
    await expect(notices).to_contain_text("Not recorded: someone else already decided this approval")
    await expect(notices).to_contain_text("Someone else rejected this by test-admin: “not yet”")
    await shot(page, "run-detail-409")
    decisions = (await beacon.status(thread_id))["decisions"]
    assert [(d["decision"], d["comment"]) for d in decisions] == [("reject", "not yet")]


async def test_reconnect_resubscribes_without_gaps_or_doubles(ui: UI) -> None:
    beacon = ui.beacon
    async with FaultProxy(beacon.running.realtime_port) as proxy:
        thread_id = await beacon.start("deploy", {"step_delay": 0.6, "lines_per_step": 30})
        await beacon.wait_status(thread_id, "waiting_approval")
        page = await ui.page()
        # ?rt= points this page's Socket.IO at the proxy in front of the realtime listener.
        await page.goto(ui.url(f"/ui/run/?id={thread_id}&rt={proxy.port}"))
        await expect(conn(page)).to_have_attribute("data-state", "connected")
        await expect(page.locator(".log")).to_contain_text("waiting for approval")
        await beacon.call("POST", f"/approve/{thread_id}", {"decision": "approve"})
        await expect(page.locator(".log")).to_contain_text("build: 10/30")

        proxy.refusing = True
        proxy.reset_all()
        await expect(conn(page)).to_have_text("reconnecting…")
        cut_at = await stored_last_seq(beacon, thread_id)
        await asyncio.sleep(1.0)  # the run keeps logging while the page is cut off
        missed = await stored_last_seq(beacon, thread_id) - cut_at
        proxy.refusing = False

        await expect(conn(page)).to_have_attribute("data-state", "connected")
        await beacon.wait_status(thread_id, "completed", timeout=30)
        last = await stored_last_seq(beacon, thread_id)
        await expect(page.get_by_test_id("log-count")).to_contain_text(f"last seq {last}")
        await expect(page.locator(".runhead .badge")).to_have_text("completed")
        assert missed > 0, "the cut was too short to miss any line"
        assert await log_seqs(page) == list(range(1, last + 1))


async def test_big_log_is_virtualized_and_filterable(ui: UI) -> None:
    beacon = ui.beacon
    total = 12_000  # more than one subscribe replays (runs.replay_cap): the rest comes over REST
    thread_id = await beacon.start("bench", {"lines": total, "size": 60, "rate": 0})
    await beacon.wait_status(thread_id, "completed", timeout=30)
    # The run's last line ("run completed") is logged after its status flips: wait until it is stored.
    last = await eventually(lambda: stored_after(beacon, thread_id, "run completed"), 10)
    page = await ui.page()
    await page.goto(ui.url(f"/ui/run/?id={thread_id}"))
    count = page.get_by_test_id("log-count")
    await expect(count).to_contain_text(f"{last} lines · last seq {last}")
    assert await page.locator(".log .line").count() < 200, "every line is in the DOM"
    await expect(page.locator(".log")).to_contain_text("run completed")  # followed to the tail

    await page.locator(".log").evaluate("box => box.scrollTop = 0")
    jump = page.get_by_role("button", name=re.compile("Follow"))
    await expect(jump).to_be_visible()
    await expect(page.locator(".log .line").first).to_have_attribute("data-seq", "1")
    await jump.click()
    await expect(page.locator(".log")).to_contain_text("run completed")

    await page.get_by_label("Search").fill("line 11999 ")
    await expect(count).to_contain_text(f"1 of {last} lines")
    await page.get_by_label("Search").fill("")
    await page.get_by_label("Level").select_option("WARNING")
    await expect(count).to_contain_text(f"0 of {last} lines")
    await expect(page.locator(".log")).to_contain_text("No line matches the filter.")
    await page.get_by_label("Level").select_option("")
    assert await log_seqs(page) == list(range(1, last + 1))


async def test_screenshots_of_every_page(ui: UI) -> None:
    """Each page at 1280 and 390 px, saved under artifacts/screenshots/ (git-ignored)."""
    beacon = ui.beacon
    done = await beacon.start("review", {"topic": "Q4 plan", "delay": 0})
    await beacon.wait_status(done, "waiting_approval")
    await beacon.call("POST", f"/approve/{done}", {"decision": "approve", "comment": "fine"})
    await beacon.wait_status(done, "completed")
    waiting = await beacon.start("deploy", {"service": "billing", "environment": "production", "step_delay": 0})
    await beacon.wait_status(waiting, "waiting_approval")
    for n, width in enumerate(WIDTHS):
        page = await ui.page(width)
        await page.goto(ui.url("/ui/"))
        rows = page.locator("table.runs tbody tr")
        await expect(rows).to_have_count(2 + n)
        await expect(rows.first).to_contain_text("waiting for approval")  # waiting first
        await expect(page.locator("[data-count=completed]")).to_have_text("1")
        await shot(page, "runs")

        # The list is live: a run started elsewhere appears without a reload.
        if n == 0:
            await beacon.start("review", {"topic": "live", "delay": 5})
            await expect(rows).to_have_count(3)
            await expect(page.locator("[data-count=running]")).to_have_text("1")

        await page.get_by_role("link", name=re.compile(waiting[:8])).click()
        await expect(page.locator(".approval")).to_contain_text("Deploy billing to production?")
        await expect(page.locator(".log")).to_contain_text("plan: verify billing")
        await shot(page, "run-detail")

        await page.get_by_role("link", name="Start a run").click()
        await expect(page.locator("#workflow")).to_have_value("review")
        await shot(page, "start")

        await page.get_by_role("link", name="Health").click()
        await expect(page.get_by_test_id("connections")).to_contain_text("admin connections")
        await expect(page.locator(".card").first).to_contain_text("healthy")
        await expect(page.locator(".spark figcaption")).to_contain_text(re.compile(r"last [2-9] s"))
        await shot(page, "health")
        await page.context.close()


async def test_login_url_keeps_the_token_for_the_tab(ui: UI) -> None:
    page = await ui.page(login=False)
    await page.goto(ui.url("/ui/"))
    await expect(page).to_have_url(re.compile(r"/ui/login/\?"))  # no token: the login page
    thread_id = await ui.beacon.start("review", {"topic": "login", "delay": 0})
    await page.goto(ui.url(f"/ui/?token={TOKEN}"))
    await expect(page.locator(f"a[href*='{thread_id}']")).to_be_visible()
    assert "token" not in page.url  # dropped from the address bar and the history
    assert await page.evaluate("sessionStorage.getItem('beacon.token')") == TOKEN
    await expect(conn(page)).to_have_attribute("data-state", "connected")  # Socket.IO took the token too
    await page.context.close()


async def test_waiting_for_you_shows_a_run_until_it_is_decided(ui: UI) -> None:
    """The approval queue is live: a run that starts waiting appears, and leaves once approved."""
    beacon = ui.beacon
    page = await ui.page()
    await page.goto(ui.url("/ui/"))
    await page.get_by_role("link", name="Waiting for you").click()
    await expect(page).to_have_url(re.compile(r"/ui/approvals/?$"))
    await expect(conn(page)).to_have_attribute("data-state", "connected")
    await expect(page.get_by_text("Nothing is waiting for a decision.")).to_be_visible()
    await page.evaluate("window.__sameDocument = true")

    older = await beacon.start("review", {"topic": "older", "delay": 0})
    await beacon.wait_status(older, "waiting_approval")
    deploy = {"service": "billing", "step_delay": 0, "approval_deadline": 3600, "default_action": "reject"}
    thread_id = await beacon.start("deploy", deploy)
    row = page.locator(f"tr[data-thread='{thread_id}']")
    await expect(row).to_contain_text("Deploy billing to staging?")
    await expect(row.locator(".deadline")).to_contain_text(re.compile(r"reject\s*in (59m \d\ds|1h 00m)"))
    await expect(page.locator("tbody tr").first).to_have_attribute("data-thread", older)  # oldest first
    await expect(page.locator(f"tr[data-thread='{older}'] .deadline")).to_have_text("none")
    link = row.get_by_role("link")
    await expect(link).to_have_attribute("href", f"/ui/run/?id={thread_id}")
    await shot(page, "approvals")

    status, _ = await beacon.call("POST", f"/approve/{thread_id}", {"decision": "approve"})
    assert status == 200
    await expect(row).to_have_count(0)
    await expect(page.get_by_test_id("approvals-total")).to_have_text("1")
    assert await page.evaluate("window.__sameDocument") is True, "the page reloaded"


async def test_run_page_shows_the_deadline_and_its_default(ui: UI) -> None:
    deploy = {"service": "billing", "step_delay": 0, "approval_deadline": 3600, "default_action": "reject"}
    thread_id = await ui.beacon.start("deploy", deploy)
    await ui.beacon.wait_status(thread_id, "waiting_approval")
    page = await ui.page()
    await page.goto(ui.url(f"/ui/run/?id={thread_id}"))
    note = page.get_by_test_id("deadline-note")
    await expect(note).to_contain_text(re.compile(r"If nobody decides, reject applies at .* \(in (59m \d\ds|1h 00m)\)"))
    review = await ui.beacon.start("review", {"topic": "no deadline", "delay": 0})
    await ui.beacon.wait_status(review, "waiting_approval")
    await page.goto(ui.url(f"/ui/run/?id={review}"))
    await expect(page.get_by_role("button", name="Approve…")).to_be_visible()
    await expect(page.get_by_test_id("deadline-note")).to_have_count(0)
