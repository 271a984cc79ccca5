"""The interactive API docs page in headless Chromium: it lists every operation from the generated OpenAPI
document and can call one with a bearer token."""

from __future__ import annotations

import re

from playwright.async_api import async_playwright, expect

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


async def test_docs_page_lists_operations_and_calls_them(api_factory) -> None:
    api = await api_factory()
    token = await api.token("prosumer")
    doc = await (await api.client.get("/api/openapi.json")).json()
    operations = sum(len(ops) for ops in doc["paths"].values())
    base = str(api.client.make_url("/"))
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page()
            resp = await page.goto(base + "api/docs")
            assert resp is not None
            assert resp.status == 200
            await page.wait_for_selector("details")
            assert await page.locator("details").count() == operations
            await page.fill("#tok", token)
            me = page.locator("details[data-path='/api/v1/me'][data-method='GET']")
            await me.locator("summary").click()
            await me.locator("button").click()
            # expect() polls from Playwright's side: the page's CSP allows no eval, so no wait_for_function here
            await expect(me.locator("pre")).to_have_text(re.compile(r"^200"))
            assert "prosumer" in (await me.locator("pre").text_content() or "")
        finally:
            await browser.close()
