"""Browser tooling for the web app's tests: headless Chromium from the system (/usr/bin/chromium, never a downloaded
browser) through Playwright for Python, the Wallet Standard test wallet, axe-core, and the layout checks."""

from __future__ import annotations

import functools
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, Playwright

ROOT = Path(__file__).resolve().parent.parent.parent
WEB = ROOT / "central" / "web"
CHROMIUM = "/usr/bin/chromium"
ARGS = ("--headless", "--no-sandbox", "--disable-gpu")
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1440, "height": 900}

#: Collects Content-Security-Policy violations and errors the page reports (read with :func:`page_problems`).
_WATCH = """
window.__gtxProblems = [];
document.addEventListener('securitypolicyviolation', (e) =>
  window.__gtxProblems.push('csp: ' + e.violatedDirective + ' ' + e.blockedURI));
window.addEventListener('error', (e) => window.__gtxProblems.push('error: ' + e.message));
"""


def launch(pw: Playwright, extra_args: Sequence[str] = ()) -> Browser:
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*ARGS, *extra_args])


def new_context(browser: Browser, *, viewport: dict[str, int] = DESKTOP, wallet_secret: bytes | None = None,
                **kw: Any) -> BrowserContext:
    ctx = browser.new_context(viewport=viewport, **kw)  # type: ignore[arg-type]
    ctx.add_init_script(_WATCH)
    if wallet_secret is not None:
        ctx.add_init_script(wallet_script(wallet_secret))
    return ctx


@functools.cache
def _wallet_bundle() -> str:
    """central/web/testing/test-wallet.js bundled with esbuild (from the app's node_modules) into one IIFE."""
    out = subprocess.run(
        [str(WEB / "node_modules" / ".bin" / "esbuild"), "testing/test-wallet.js", "--bundle", "--format=iife"],
        cwd=WEB, capture_output=True, text=True, check=True, timeout=60,
    )
    return out.stdout


def wallet_script(secret: bytes) -> str:
    """The init script that registers the test wallet holding ``secret`` (64-byte Ed25519 secret || public key)."""
    return f"window.__GTX_TEST_WALLET_SECRET = {json.dumps(secret.hex())};\n{_wallet_bundle()}"


@functools.cache
def _axe_source() -> str:
    return (WEB / "node_modules" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")


def axe_serious(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now (WCAG 2.x A and AA rules). axe is
    evaluated through the DevTools protocol, so the page's CSP (which forbids inline scripts) does not block it."""
    page.evaluate(_axe_source() + "\n;0")
    result = page.evaluate(
        "async () => (await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']})).violations"
        ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
        ".map(v => v.id + ': ' + v.help + ' @ ' + v.nodes.map(n => n.target.join(' ')).slice(0, 3).join(' | '))"
    )
    return [str(v) for v in result]


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than the viewport (0: no horizontal scroll)."""
    return int(page.evaluate("Math.max(0, document.documentElement.scrollWidth - window.innerWidth)"))


def page_problems(page: Page) -> list[str]:
    return [str(p) for p in page.evaluate("window.__gtxProblems || []")]


def login(page: Page, base_url: str, email: str, password: str) -> None:
    page.goto(f"{base_url}/app/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/app/login" not in url, timeout=15_000)
