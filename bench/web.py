"""Web app benchmark (issue 12): the first page's initial JavaScript (gzip) and the household dashboard's time to
usable with Chromium's CPU throttled 4x (DevTools Protocol ``Emulation.setCPUThrottlingRate``), on the demo's data.

1. Sizes, from the build (central/web/dist; `make web` builds it): the JavaScript the first page loads (its entry
   script and what it preloads), gzip -9, against the 250 kB budget; and the JavaScript Chromium actually fetched
   for the log-in page (a visitor's first page) and for the dashboard.
2. The real stack as the demo starts it (tests/demo_support through tests/web/webstack.py): PostgreSQL, Mosquitto, the
   meter simulator, central (embedded ledger), the edge daemon; the gateway is provisioned, meters claimed and
   wallets linked through the API; readings and mints flow for a while.
3. Headless Chromium (/usr/bin/chromium): a prosumer logs in; then, `--runs` times each, the dashboard is opened with
   the CPU throttled 4x and unthrottled, and the log-in page with the CPU throttled 4x. "Usable" is the
   ``gtx:dashboard-usable`` performance mark the dashboard sets once its totals, chart, balances and mints are on
   screen (target <= 1.5 s throttled); the log-in page's first contentful paint is the browser's same-run baseline.

    .venv/bin/python bench/web.py [--runs 5] [--settle 20] [--waterfall]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from baseline import print_baseline  # noqa: E402 - bench/ is the script directory
from playwright.sync_api import Page, sync_playwright  # noqa: E402

from tests.web import browser as b  # noqa: E402
from tests.web import webstack  # noqa: E402

DIST = ROOT / "central" / "web" / "dist"
BUDGET_KB = 250.0
TARGET_USABLE_MS = 1500.0


def gz(data: bytes) -> int:
    return len(gzip.compress(data, 9))


def first_page_js() -> tuple[int, list[str]]:
    """gzip bytes of the scripts index.html loads and preloads (what every first page needs before its own chunk)."""
    html = (DIST / "index.html").read_text(encoding="utf-8")
    names = re.findall(r'(?:src|href)="/assets/([^"]+\.js)"', html)
    return sum(gz((DIST / "assets" / n).read_bytes()) for n in names), names


async def prepare(state: Path) -> webstack.WebStack:
    from demo_support import people  # noqa: PLC0415 - importable once webstack has set up sys.path
    from demo_support.api import Api  # noqa: PLC0415

    web = await webstack.start(state)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:
        api = Api(s, web.base_url)
        await people.register(api, web.st, web.browser_owner)
        await people.provision_gateway(api, web.st, web.cast, await people.read_pairing_code(api, web.st))
        await people.verify_gateway(api, web.st, web.cast)
        await people.claim_and_link(api, web.cast)
    return web


def script_bytes(page: Page, url: str) -> int:
    """Open ``url`` in ``page`` (closed afterwards) and add up the gzip size of every script Chromium fetched."""
    seen: list[bytes] = []
    page.on("response", lambda r: seen.append(r.body()) if r.request.resource_type == "script" else None)
    page.goto(url)
    page.get_by_role("heading", level=1).wait_for()
    page.wait_for_load_state("networkidle")
    page.close()
    return sum(gz(x) for x in seen)


def timed(page: Page, url: str, rate: float, mark: str | None, *, waterfall: bool = False) -> float:
    """ms from navigation start to ``mark`` (or first contentful paint) with the CPU throttled ``rate`` x."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": rate})
    try:
        page.goto(url)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got: Any = page.evaluate(
                f"performance.getEntriesByName({mark!r}).map(e => e.startTime)" if mark else
                "performance.getEntriesByType('paint').filter(e => e.name === 'first-contentful-paint')"
                ".map(e => e.startTime)")
            if got:
                if waterfall:  # what the page fetched before it was usable, in order
                    entries: Any = page.evaluate(
                        "performance.getEntriesByType('resource').map(e => [e.name, e.startTime, e.responseEnd])")
                    print(f"    {rate:g}x: usable at {got[0]:.0f} ms; fetched before that:")
                    for name, start, end in entries:
                        if end <= got[0]:
                            print(f"      {start:6.0f} .. {end:6.0f} ms  {name.split('/', 3)[-1][:90]}")
                return float(got[0])
            time.sleep(0.05)
        raise TimeoutError(f"{url}: no {mark or 'first contentful paint'} within 60 s")
    finally:
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
        cdp.detach()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--settle", type=float, default=20.0, help="seconds of readings and mints before measuring")
    ap.add_argument("--waterfall", action="store_true", help="print what each dashboard run fetched, and when")
    args = ap.parse_args()
    if not (DIST / "index.html").is_file():
        print("bench/web.py: the web app is not built: run `make web`", file=sys.stderr)
        return 2
    print_baseline("bench/web.py")
    initial, names = first_page_js()
    print(f"  initial JavaScript of the first page: {initial / 1000:.1f} kB gzip ({', '.join(names)}); "
          f"budget {BUDGET_KB:.0f} kB: {'OK' if initial / 1000 <= BUDGET_KB else 'OVER'}")
    chunks = sorted(((gz(p.read_bytes()), p.name) for p in (DIST / "assets").glob("*.js")), reverse=True)
    print("  largest route chunks (loaded on demand): " + ", ".join(f"{n} {s / 1000:.1f} kB" for s, n in chunks[:5]))

    state = Path(tempfile.mkdtemp(prefix="gtx-bench-web-")) / "state"
    web = asyncio.run(prepare(state))
    try:
        time.sleep(args.settle)
        base = web.base_url
        with sync_playwright() as pw:
            br = b.launch(pw)
            visitor = b.new_context(br).new_page()
            print(f"  JavaScript fetched for the log-in page (a visitor's first page): "
                  f"{script_bytes(visitor, f'{base}/app/login') / 1000:.1f} kB gzip")
            ctx = b.new_context(br)
            page = ctx.new_page()
            owner = web.browser_owner
            b.login(page, base, owner.email, owner.password)
            page.wait_for_load_state("networkidle")
            dash_js = script_bytes(ctx.new_page(), f"{base}/app/dashboard")
            print(f"  JavaScript fetched for the dashboard: {dash_js / 1000:.1f} kB gzip")
            throttled, plain, login_fcp = [], [], []
            for _ in range(args.runs):
                p = ctx.new_page()
                throttled.append(timed(p, f"{base}/app/dashboard", 4, "gtx:dashboard-usable",
                                       waterfall=args.waterfall))
                p.close()
                p = ctx.new_page()
                plain.append(timed(p, f"{base}/app/dashboard", 1, "gtx:dashboard-usable", waterfall=args.waterfall))
                p.close()
                p = b.new_context(br).new_page()
                login_fcp.append(timed(p, f"{base}/app/login", 4, None))
                p.context.close()
            br.close()
        med, base_fcp = statistics.median(throttled), statistics.median(login_fcp)
        print(f"  same-run browser baseline: log-in page first contentful paint, CPU 4x throttled: median "
              f"{base_fcp:.0f} ms")
        print(f"  dashboard usable, CPU 4x throttled: median {med:.0f} ms over {args.runs} runs "
              f"(min {min(throttled):.0f}, max {max(throttled):.0f}) = {med / base_fcp:.2f}x the baseline; "
              f"target <= {TARGET_USABLE_MS:.0f} ms: {'OK' if med <= TARGET_USABLE_MS else 'over'}")
        print(f"  dashboard usable, unthrottled: median {statistics.median(plain):.0f} ms")
    finally:
        asyncio.run(webstack.stop(web))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
