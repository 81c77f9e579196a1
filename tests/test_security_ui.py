"""TESTPLAN S20 and S26 in the console, in real Chromium: one row per log line, a strict CSP."""

from __future__ import annotations

from playwright.async_api import expect
from test_security_rest import EVIL
from test_ui import UI, ui  # noqa: F401 (the fixture)

ROW = 20  # px, LogView's fixed row height


async def test_s20_console_keeps_one_row_per_log_line_and_expands_it(ui: UI) -> None:  # noqa: F811
    beacon = ui.beacon
    thread_id = await beacon.start("review", {"topic": "t", "delay": 0})
    await beacon.wait_status(thread_id, "waiting_approval")
    status, body = await beacon.call("POST", f"/approve/{thread_id}", {"decision": "reject", "comment": EVIL})
    assert status == 200, body
    await beacon.wait_status(thread_id, "waiting_approval")
    page = await ui.page()
    await page.goto(ui.url(f"/ui/run/?id={thread_id}"))
    row = page.locator(".log .line", has_text="Draft rejected")
    await expect(row).to_contain_text("Draft rejected: ok\\n2026-12-01 00:00:00,000 CRITICAL")
    await expect(row).to_contain_text("\\x1b]0;pwned\\x07\\x1b[1A\\x1b[2K\\rgone\\x9b31m\\u202eevil")
    heights = await row.evaluate("el => [el.getBoundingClientRect().height, el.scrollHeight]")
    assert heights == [ROW, ROW], f"the row grew past one line: {heights}"
    rows = await page.locator(".log .line").evaluate_all("els => els.map((el) => el.offsetTop)")
    assert rows == [i * ROW for i in range(len(rows))]

    await row.get_by_role("button", name="in full").click()
    detail = page.get_by_role("region", name="Full text of log line")
    await expect(detail).to_contain_text("Draft rejected: ok")
    text = await detail.locator("pre").inner_text()
    assert text.splitlines()[1].startswith("2026-12-01 00:00:00,000 CRITICAL beacon: forged"), text
    assert "\x1b" not in text and "\\x1b]0;pwned" in text and "\u202e" not in text
    await detail.get_by_role("button", name="Close").click()
    await expect(detail).to_have_count(0)


async def test_s26_console_works_under_a_strict_csp(ui: UI) -> None:  # noqa: F811
    beacon = ui.beacon
    thread_id = await beacon.start("review", {"topic": "t", "delay": 0})
    await beacon.wait_status(thread_id, "waiting_approval")
    async with beacon.http.get(beacon.rest + "/ui/") as resp:
        policy = resp.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert directives["script-src"].startswith("'self' 'sha256-")

    page = await ui.page()
    await page.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation',"
        " (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));"
    )
    for path in ("/ui/", "/ui/approvals/", "/ui/health/", "/ui/start/", f"/ui/run/?id={thread_id}"):
        await page.goto(ui.url(path))
        await expect(page.locator(".conn")).to_have_attribute("data-state", "connected")
        assert await page.evaluate("window.__csp") == [], path
    await expect(page.locator(".approval")).to_contain_text("Publish this draft?")  # the run page rendered
    await expect(page.locator(".log")).to_contain_text("waiting for approval")  # and its log came live
    await page.get_by_role("link", name="Runs").first.click()  # a client-side navigation
    await expect(page.locator("main")).to_contain_text(thread_id[:8])
    assert await page.evaluate("window.__csp") == []
