"""The web app in headless Chromium against the real stack (PostgreSQL, Mosquitto, central with its embedded ledger
serving the built app, the edge daemon and simulated meters): a journey per role, the cookie session and CSP, user
text rendered inert, and every page at phone and desktop size without horizontal scroll or serious axe violations.

The tests of this file run in order in one worker and share one stack: the installer's journey registers the gateway
the household's meters hang on, the household's mint feeds the REC authority's certificate. Each journey checks what
it needs from the ones before it and says so when it is missing."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from tests.web import browser as b
from tests.web import webstack
from tests.web.camera import qr_y4m
from tests.web.webstack import WebStack

pytestmark = pytest.mark.slow
T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent.parent
XSS_LABEL = "<img src=x onerror=window.__xss=1>"
XSS_SERIAL = "<img/src=x/onerror=__xss=2>"
XSS_BENEFICIARY = "<script>window.__xss=3</script>"
XSS_PURPOSE = "<img src=x onerror=window.__xss=4>"
ASK_PRICE = 120_000  # quote base units per kWh
XSS_CLAIM_MONTH = "<img src=x onerror=window.__xss=5>"
#: The stack's grid zones (issue 16): every meter in feeder-a (no trade crosses a boundary, so the journeys' prices
#: are unchanged); the tree, its fees, losses, time-of-use and tariffs are what the trading page shows.
ZONES = """[zones]
grid_operator = "FCCGr4qf9KtggNjGxDjZLuVyv29vu1Q9gxSA7XQoWu96"
default_zone = "feeder-a"

[[zones.zone]]
name = "grid"
retail = 300000
feed_in = 80000

[[zones.zone]]
name = "substation-1"
parent = "grid"
fee_per_kwh = 10
loss_bps = 50

[[zones.zone]]
name = "feeder-a"
parent = "substation-1"
fee_per_kwh = 5
fee_bps = 20
loss_bps = 100
retail = 250000
feed_in = 90000

[[zones.zone.tou]]
hours = [17, 18, 19, 20]
fee_per_kwh = 15
retail = 350000

[[zones.zone]]
name = "feeder-b"
parent = "substation-1"
fee_per_kwh = 7
loss_bps = 120
"""


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStack]:
    stack = run(webstack.start(tmp_path_factory.mktemp("web") / "state", zones=ZONES))
    try:
        yield stack
    finally:
        run(webstack.stop(stack))


@pytest.fixture(scope="module")
def pw() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def chromium(pw: Playwright) -> Iterator[Browser]:
    br = b.launch(pw)
    yield br
    br.close()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end in a thread of its own: Playwright's sync API keeps an event loop in this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def api(web: WebStack, method: str, path: str, user: Any = None, body: Any = None) -> Any:
    return run(webstack.call(web, method, path, user, body))


def eventually(check: Callable[[], Any], timeout_s: float, what: str, every_s: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(every_s)


def assert_clean(page: Page) -> None:
    assert b.page_problems(page) == [], "the page reported CSP violations or script errors"
    assert page.evaluate("window.__xss === undefined"), "planted markup ran as script"


# --------------------------------------------------------------------------------------------- cookie session, CSP


def _http(url: str, method: str = "GET", headers: dict[str, str] | None = None,
          body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def test_app_is_served_under_a_strict_csp_and_the_session_lives_in_an_httponly_cookie(web: WebStack) -> None:
    status, headers, body = _http(f"{web.base_url}/app/dashboard")
    assert status == 200
    assert b'<div id="root">' in body
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert b"<script>" not in body  # no inline script in the page
    for script in re.findall(rb'src="(/assets/[^"]+\.js)"', body):
        s, h, _ = _http(web.base_url + script.decode())
        assert s == 200
        assert "immutable" in h["cache-control"]

    admin = web.cast.admin
    creds = json.dumps({"email": admin.email, "password": admin.password}).encode()
    url = f"{web.base_url}/api/v1/auth/session"
    json_type = {"Content-Type": "application/json"}
    status, _, body = _http(url, "POST", json_type, creds)  # no CSRF header: refused before the password is checked
    assert status == 403
    assert json.loads(body)["error"]["code"] == "csrf_header_missing"
    cross = {**json_type, "X-GTX-CSRF": "1", "Origin": "http://evil.example"}
    assert _http(url, "POST", cross, creds)[0] == 403

    status, headers, body = _http(url, "POST", {**json_type, "X-GTX-CSRF": "1"}, creds)
    assert status == 200
    out = json.loads(body)
    assert "refresh_token" not in out
    assert out["user"]["role"] == "admin"
    cookie = headers["set-cookie"]
    for attr in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/api/v1/auth/session"):
        assert attr in cookie
    pair = cookie.split(";", 1)[0]

    refresh = f"{url}/refresh"
    assert _http(refresh, "POST", {"Cookie": pair})[0] == 403  # the cookie alone is not enough
    status, headers, body = _http(refresh, "POST", {"Cookie": pair, "X-GTX-CSRF": "1"})
    assert status == 200
    new_pair = headers["set-cookie"].split(";", 1)[0]
    assert new_pair != pair  # rotated
    access = json.loads(body)["access_token"]
    status, _, body = _http(f"{web.base_url}/api/v1/me", headers={"Authorization": f"Bearer {access}"})
    assert status == 200
    assert json.loads(body)["email"] == admin.email

    status, headers, _ = _http(url, "DELETE", {"Cookie": new_pair, "X-GTX-CSRF": "1"})
    assert status == 204
    assert 'gtx_refresh=""' in headers["set-cookie"] or "Max-Age=0" in headers["set-cookie"]
    assert _http(refresh, "POST", {"Cookie": new_pair, "X-GTX-CSRF": "1"})[0] == 401  # that session ended


# ------------------------------------------------------------------------------------------------------ installer


def test_installer_registers_the_gateway_by_scanning_its_qr_code(web: WebStack, pw: Playwright,
                                                                 tmp_path: Path) -> None:
    status = json.loads(_http(f"{web.st.status_url}api/status", headers={
        "Authorization": "Basic " + base64.b64encode(f"installer:{web.st.status_password}".encode()).decode(),
    })[2])
    video = qr_y4m(f"gridtokenx:{web.st.device_id}?pairing={status['pairing_code']}", tmp_path / "qr.y4m")
    br = b.launch(pw, ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                       f"--use-file-for-fake-video-capture={video}"])
    try:
        ctx = b.new_context(br, viewport=b.PHONE, permissions=["camera"])
        page = ctx.new_page()
        b.login(page, web.base_url, web.cast.installer.email, web.cast.installer.password)
        expect(page).to_have_url(re.compile("/app/gateways"))
        page.get_by_role("button", name="Scan the QR code with the camera").click()
        expect(page.get_by_label("Device id")).to_have_value(web.st.device_id, timeout=20_000)
        expect(page.get_by_label("Pairing code")).to_have_value(status["pairing_code"])
        page.get_by_label("Site label").fill(XSS_LABEL)
        page.get_by_role("button", name="Register", exact=True).click()
        device = page.get_by_test_id("device")
        expect(device).to_contain_text(XSS_LABEL)  # shown as text
        # Watched live. The wait is a limit: if a broker session of the gateway drops with the challenge in it, central
        # sends the challenge again as soon as the gateway is back online (issue 12), not a cool-down later.
        expect(page.get_by_test_id("device-status")).to_have_text("Status: verified", timeout=75_000)
        prefix = web.st.device_id[:8]
        for o in web.cast.owners:
            page.get_by_label("Meter serial").last.fill(o.serial)
            page.locator(f"#f-add-key-{prefix}").fill(o.meter_key)
            page.locator(f"#f-add-source-{prefix}").fill("solar" if o.role == "prosumer" else "")
            page.get_by_role("button", name="Add a meter").click()
            expect(device).to_contain_text(f"{web.cast.owners.index(o) + 1} meters")
        page.locator(f"#f-add-serial-{prefix}").fill(XSS_SERIAL)
        page.locator(f"#f-add-key-{prefix}").fill("xss-meter-key-1")
        page.get_by_role("button", name="Add a meter").click()
        expect(device).to_contain_text(f"{len(web.cast.owners) + 1} meters")
        assert b.horizontal_overflow(page) == 0
        assert_clean(page)
    finally:
        br.close()
    run(webstack.owners_claim_and_link(web))


# ------------------------------------------------------------------------------------------------------ household


def _login_api(web: WebStack, user: Any) -> None:
    out = api(web, "POST", "/api/v1/auth/login", body={"email": user.email, "password": user.password})
    user.token, user.id = out["access_token"], out["user"]["id"]


def _counterparty_bid(web: WebStack, qty: int, price: int) -> None:
    """A consumer (through the API) funds escrow from the dev faucet and bids, good till cancelled."""
    import aiohttp  # noqa: PLC0415
    from demo_support import market  # noqa: PLC0415
    from demo_support.api import Api  # noqa: PLC0415

    buyer = web.cast.consumers[0]
    need = -(-qty * price // 1000)

    async def bid() -> None:
        async with aiohttp.ClientSession() as s:
            a = Api(s, web.base_url)
            await a.post("/api/v1/admin/faucet/quote", {"user_id": buyer.id, "amount": 10 * need}, web.cast.admin)
            await market.deposit(a, buyer, "quote", need)
            await a.post("/api/v1/market/orders", {"side": "buy", "qty": qty, "price": price, "tif": "gtc"}, buyer)

    run(bid())


def test_household_journey(web: WebStack, chromium: Browser) -> None:
    ada = web.browser_owner
    assert web.cast.owners[1].meter_id, "needs the installer's journey first"
    ctx = b.new_context(chromium, viewport=b.DESKTOP, wallet_secret=bytes(ada.wallet))
    page = ctx.new_page()
    base = web.base_url
    # sign up -> verify -> log in
    page.goto(f"{base}/app/signup")
    page.get_by_label("E-mail").fill(ada.email)
    page.get_by_label("Password").fill(ada.password)
    page.get_by_label("I am a").select_option("prosumer")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("status")).to_contain_text("Check your e-mail")
    page.goto(f"{base}/app/verify?token={web.mail_token(ada.email)}")
    expect(page.get_by_role("status")).to_contain_text("verified")
    b.login(page, base, ada.email, ada.password)
    expect(page).to_have_url(re.compile("/app/dashboard"))
    expect(page.get_by_text("You have no meter yet")).to_be_visible()
    # a reload keeps the session (HttpOnly cookie) and no token is readable by the page
    page.reload()
    expect(page.get_by_role("heading", name="My energy")).to_be_visible()
    assert "gtx_refresh" not in page.evaluate("document.cookie")
    assert page.evaluate("JSON.stringify(localStorage) + JSON.stringify(sessionStorage)").count("ey") == 0
    # link the wallet: connect (Wallet Standard) -> sign the link message -> linked
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("button", name="Connect GTX Test Wallet").click()
    expect(page.get_by_text("Connected:")).to_be_visible()
    page.get_by_role("button", name="Sign the link message").click()
    expect(page.get_by_role("status")).to_have_text("Wallet linked.")
    expect(page.get_by_text(f"Linked wallet: {ada.address}")).to_be_visible()
    assert page.evaluate("window.__gtxTestWallet.signed") == 1
    # claim the meter (a wrong key first: a sentence, not a raw error)
    page.get_by_role("link", name="Meters").click()
    page.get_by_label("Meter serial").fill(ada.serial)
    page.get_by_label("Meter key (from your utility)").fill("not-the-key")
    page.get_by_role("button", name="Claim", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Check the value and try again")
    page.get_by_label("Meter key (from your utility)").fill(ada.meter_key)
    page.get_by_role("button", name="Claim", exact=True).click()
    expect(page.get_by_test_id("meter")).to_contain_text(ada.serial)
    # readings arrive live
    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_test_id("live-power")).to_contain_text(f"W · {ada.serial}", timeout=30_000)
    # a mint and its proof
    _login_api(web, ada)

    def confirmed_energy() -> int:
        mints = api(web, "GET", "/api/v1/mints?limit=100", ada)
        return sum(m["energy_wh"] for m in mints if m["status"] == "confirmed")

    minted = eventually(lambda: confirmed_energy() >= 200 and confirmed_energy(), 120, "confirmed mints of 200 Wh")
    page.reload()
    mints_card = page.get_by_role("region", name="Recent mints")
    expect(mints_card).to_contain_text("confirmed")
    mints_card.get_by_role("button", name="Show proof").first.click()
    proof = page.get_by_role("list", name="How this mint is proven")
    expect(proof).to_contain_text("signed readings from your meter")
    expect(proof).to_contain_text("written in the memo of transaction")
    # deposit (the wallet signs the transaction request) -> order -> fill -> withdraw
    deposit = min(minted, 2_000) // 2 * 2
    qty = deposit // 2
    page.get_by_role("link", name="Trading").click()
    expect(page.get_by_role("timer")).to_contain_text("Open epoch closes in")
    page.get_by_role("button", name="Connect GTX Test Wallet").click()
    page.get_by_label("Asset").select_option("energy")
    page.get_by_label("Amount (base units)").fill(str(deposit))
    page.get_by_role("button", name="Deposit", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Deposit submitted", timeout=30_000)

    def escrow(asset: str) -> int:
        return sum(x["available"] for x in api(web, "GET", "/api/v1/market/balances", ada) if x["asset"] == asset)

    eventually(lambda: escrow("energy") >= deposit, 30, "the deposit credited to escrow", 0.5)
    # the escrow check runs before submit: more than escrow holds is refused with a sentence
    page.reload()
    page.get_by_label("Side").select_option("sell")
    page.get_by_label("Energy (Wh)").fill(str(deposit * 10))
    page.get_by_label("Price (quote units per kWh)").fill(str(ASK_PRICE))
    page.get_by_role("button", name="Place order").click()
    expect(page.get_by_role("alert")).to_contain_text("Deposit first")
    _counterparty_bid(web, qty, ASK_PRICE + 10_000)
    page.get_by_label("Energy (Wh)").fill(str(qty))
    page.get_by_role("button", name="Place order").click()
    expect(page.get_by_test_id("order").first).to_contain_text(f"sell {qty} Wh")

    def filled() -> bool:
        page.reload()
        return "settled" in page.get_by_role("region", name="My fills").inner_text()

    eventually(filled, 60, "the sell order filled and settled", 2)
    page.get_by_role("button", name="Connect GTX Test Wallet").click()
    page.get_by_label("Asset").select_option("energy")
    page.get_by_label("Amount (base units)").fill(str(deposit - qty))
    page.get_by_role("button", name="Withdraw").click()
    expect(page.get_by_role("status")).to_contain_text("Withdrawal requested")
    eventually(lambda: escrow("energy") == 0, 30, "the withdrawal leaves nothing in escrow", 0.5)
    # verify this epoch: its order set downloaded and hashed in the browser
    page.reload()
    page.get_by_role("button", name="Verify this epoch").first.click()
    expect(page.get_by_test_id("verify-ok")).to_contain_text("matches")
    assert_clean(page)
    ada.meter_id = api(web, "GET", "/api/v1/meters", ada)[0]["id"]
    ctx.close()


# ------------------------------------------------------------------------------------------------ REC authority


def test_rec_authority_issues_holder_transfers_and_retires_public_page_says_valid(web: WebStack,
                                                                                   chromium: Browser) -> None:
    ada, buyer = web.browser_owner, web.cast.consumers[0]
    assert ada.meter_id, "needs the household journey first"
    mints = [m for m in api(web, "GET", "/api/v1/mints?limit=1000", ada)
             if m["status"] == "confirmed" and m["meter_id"] == ada.meter_id]
    start = min(mints, key=lambda m: m["window_start_ms"])["window_start"]
    end = max(mints, key=lambda m: m["window_start_ms"])["window_end"]
    # the authority issues
    ctx = b.new_context(chromium, viewport=b.PHONE)
    page = ctx.new_page()
    b.login(page, web.base_url, web.cast.authority.email, web.cast.authority.password)
    expect(page).to_have_url(re.compile("/app/certificates"))
    page.get_by_label("Meter id").fill(ada.meter_id)
    page.get_by_label("Period start").fill(start)
    page.get_by_label("Period end").fill(end)
    page.get_by_role("button", name="Issue a certificate").click()
    expect(page.get_by_role("status")).to_contain_text("Done")
    assert b.horizontal_overflow(page) == 0
    ctx.close()
    cert = api(web, "GET", "/api/v1/certificates", ada)[0]
    slice_wh = max(1, cert["energy_wh"] // 4)
    # the holder transfers a slice, then retires another, in her wallet
    ctx = b.new_context(chromium, viewport=b.DESKTOP, wallet_secret=bytes(ada.wallet))
    page = ctx.new_page()
    b.login(page, web.base_url, ada.email, ada.password)
    page.goto(f"{web.base_url}/app/certificates")
    page.get_by_role("button", name="Connect GTX Test Wallet").click()
    card = page.get_by_role("region").filter(has_text=cert["meter_serial"])
    card.get_by_label("Recipient wallet").fill(buyer.address)
    card.get_by_label("Amount (Wh)").fill(str(slice_wh))
    card.get_by_role("button", name="Transfer").click()
    expect(card.get_by_role("status")).to_contain_text("Done", timeout=30_000)
    card.get_by_label("Beneficiary").fill(XSS_BENEFICIARY)
    card.get_by_label("Purpose").fill(XSS_PURPOSE)
    card.get_by_role("button", name="Retire").click()
    expect(card.get_by_role("status")).to_contain_text("Done", timeout=30_000)
    assert page.evaluate("window.__gtxTestWallet.signed") == 2
    assert_clean(page)
    ctx.close()
    # anyone, logged out: the public, shareable validation page checks it against the chain
    ctx = b.new_context(chromium, viewport=b.PHONE)
    page = ctx.new_page()
    page.goto(f"{web.base_url}/app/validate?certificate_id={cert['id']}")
    expect(page.get_by_test_id("validity")).to_have_text("Valid: this certificate matches the chain.")
    expect(page.get_by_test_id("beneficiary")).to_have_text(XSS_BENEFICIARY)  # the markup shown as text
    expect(page.get_by_test_id("purpose")).to_have_text(XSS_PURPOSE)
    assert page.locator("main script, main img").count() == 0
    assert b.horizontal_overflow(page) == 0
    assert b.axe_serious(page) == []
    assert_clean(page)
    ctx.close()


# -------------------------------------------------------------------------------------------------------- admin


def test_admin_sees_reconciliation_with_no_mismatch(web: WebStack, chromium: Browser) -> None:
    ctx = b.new_context(chromium, viewport=b.DESKTOP)
    page = ctx.new_page()
    b.login(page, web.base_url, web.cast.admin.email, web.cast.admin.password)
    expect(page).to_have_url(re.compile("/app/admin"))
    expect(page.get_by_test_id("recon")).to_contain_text(" 0 mismatches")
    expect(page.get_by_role("region", name="Users and roles")).to_contain_text(web.browser_owner.email)
    expect(page.get_by_role("region", name="Meter-claim audit trail")).to_contain_text(web.browser_owner.serial)
    assert_clean(page)
    # the language switch: Thai from the catalogue, kept across a reload
    page.get_by_label("Language").select_option("th")
    expect(page.get_by_role("heading", level=1)).to_have_text("การดูแลระบบ")
    expect(page.get_by_role("link", name="ตั้งค่า")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("การดูแลระบบ")
    assert page.evaluate("document.documentElement.lang") == "th"
    ctx.close()


def test_two_tabs_opened_at_once_keep_the_session(web: WebStack, chromium: Browser) -> None:
    """A household's browser restoring two tabs: each page refreshes the session at load with the one cookie, which
    the server rotates on every refresh and whose reuse ends the login (a stolen token). The tabs take turns (Web
    Locks), so the second sends the cookie the first one's answer set. The refreshes are held in the browser until
    both have arrived or two seconds have passed: taking turns, only one is ever waiting."""
    ctx = b.new_context(chromium, viewport=b.DESKTOP)
    login = ctx.new_page()
    b.login(login, web.base_url, web.cast.admin.email, web.cast.admin.password)
    login.close()
    held: list[Any] = []
    together: list[int] = []
    ctx.route("**/api/v1/auth/session/refresh", lambda route: held.append(route))  # noqa: PLW0108 - Playwright cannot wrap a bound builtin
    tabs = [ctx.new_page() for _ in range(2)]
    for tab in tabs:
        tab.goto(f"{web.base_url}/app/admin", wait_until="commit")
    deadline = time.monotonic() + 30
    while sum(together) < 2 and time.monotonic() < deadline:
        tabs[0].wait_for_timeout(50)
        if not held:
            continue
        first = time.monotonic()
        while len(held) < 2 and time.monotonic() - first < 2:
            tabs[0].wait_for_timeout(50)
        together.append(len(held))
        for route in held:
            route.continue_()
        held.clear()
    assert together == [1, 1], f"refreshes waiting at once: {together}"
    ctx.unroute("**/api/v1/auth/session/refresh")
    for tab in tabs:
        expect(tab).to_have_url(re.compile("/app/admin"))
        expect(tab.get_by_test_id("recon")).to_be_visible()
    tabs[1].reload()  # the login survived both refreshes
    expect(tabs[1]).to_have_url(re.compile("/app/admin"))
    expect(tabs[1].get_by_test_id("recon")).to_be_visible()
    ctx.close()


# ------------------------------------------------------------------------------------ market depth (issue 16)


def _import_hour(web: WebStack, user: Any) -> tuple[str, str, int]:
    """An hour (and its month) in which the user's meter imported energy that is not matched yet, by the API."""
    now = time.gmtime()
    months = [f"{now.tm_year + (now.tm_mon - 1 + k) // 12}-{(now.tm_mon - 1 + k) % 12 + 1:02d}" for k in (0, 1, 2)]

    def find() -> tuple[str, str, int] | None:
        for month in months:
            st = api(web, "GET", f"/api/v1/market/matching/statement?month={month}", user)
            for h in st["hours"]:
                if h["import_wh"] - h["matched_wh"] >= 2:
                    return month, h["hour"], h["import_wh"] - h["matched_wh"]
        return None

    found: tuple[str, str, int] = eventually(find, 60, "an hour of metered import to match", 2)
    return found


def test_household_sees_zones_runs_standing_orders_redeems_an_hour_and_a_stranger_verifies_the_claim(
        web: WebStack, chromium: Browser) -> None:
    ada = web.browser_owner
    assert ada.meter_id, "needs the household journey first"
    ctx = b.new_context(chromium, viewport=b.DESKTOP, wallet_secret=bytes(ada.wallet))
    page = ctx.new_page()
    b.login(page, web.base_url, ada.email, ada.password)
    # trading: the zone tree with fees, losses and tariffs (time of use by hour), my meter's zone, per-zone results
    page.goto(f"{web.base_url}/app/trading")
    tree = page.get_by_role("list", name="Zone tree")
    page.get_by_label("Tariffs at hour (time of use)").select_option("9")
    expect(tree.get_by_test_id("zone").filter(has_text="feeder-a").last).to_contain_text(
        "grid fee 5 per kWh + 20 bp · loss 1.00 % · utility sells at 250000 · utility buys at 90000")
    page.get_by_label("Tariffs at hour (time of use)").select_option("18")
    expect(tree.get_by_test_id("zone").filter(has_text="feeder-a").last).to_contain_text(
        "grid fee 15 per kWh + 20 bp · loss 1.00 % · utility sells at 350000")
    expect(tree).to_contain_text("substation-1")
    expect(tree).to_contain_text("feeder-b")
    expect(page.get_by_test_id("meter-zone")).to_have_text(f"Meter {ada.serial} is in zone feeder-a")
    expect(page.get_by_test_id("epoch-zone").first).to_be_visible(timeout=20_000)
    expect(page.get_by_test_id("fill").first).to_contain_text("grid fee 0 · loss 0 Wh · with a household")
    assert_clean(page)
    # standing orders: create, runs every epoch (placed or skipped with a reason), pause, resume, delete
    page.get_by_role("link", name="Standing orders").click()
    page.get_by_label("Side").select_option("sell")
    page.get_by_label("Sell at no less than (quote units per kWh)").fill(str(ASK_PRICE))
    page.get_by_label("Daily energy limit (Wh, optional)").fill("500")
    page.get_by_role("button", name="Create standing order").click()
    expect(page.get_by_role("status")).to_contain_text("Standing order created")
    item = page.get_by_test_id("standing").first
    expect(item).to_contain_text(f"sell at no less than {ASK_PRICE}")
    expect(item).to_contain_text("Daily energy limit (Wh, optional): 500 Wh")
    expect(item.get_by_test_id("standing-status")).to_have_text("state: active")
    sid = api(web, "GET", "/api/v1/market/standing", ada)[0]["id"]
    eventually(lambda: api(web, "GET", f"/api/v1/market/standing/{sid}/runs", ada), 40, "a standing-order run", 1)
    item.get_by_role("button", name=f"Recent runs #{sid}").click()
    expect(item.get_by_test_id("run").first).to_contain_text(re.compile("placed|skipped: "))
    item.get_by_role("button", name=f"Pause #{sid}").click()
    expect(item.get_by_test_id("standing-status")).to_have_text("state: paused")
    item.get_by_role("button", name=f"Resume #{sid}").click()
    expect(item.get_by_test_id("standing-status")).to_have_text("state: active")
    item.get_by_role("button", name=f"Delete #{sid}").click()
    expect(page.get_by_test_id("standing")).to_have_count(0)
    # matching: the wallet signs the burn of tokens against an hour's import; the statement shows it
    month, hour, unmatched = _import_hour(web, ada)
    amount = min(unmatched, 50) // 2 or 1
    page.get_by_role("link", name="Matching").click()
    page.get_by_label("Month").fill(month)
    page.get_by_role("button", name="Connect GTX Test Wallet").click()
    signed_before = page.evaluate("window.__gtxTestWallet.signed")
    page.get_by_label("Hour (UTC)").fill(hour[:13] + ":00")
    page.get_by_label("Energy to redeem (Wh)").fill(str(amount))
    page.get_by_role("button", name="Sign and redeem").click()
    expect(page.get_by_role("status")).to_contain_text(f"Redeemed {amount} Wh: confirmed", timeout=30_000)
    assert page.evaluate("window.__gtxTestWallet.signed") == signed_before + 1
    st = api(web, "GET", f"/api/v1/market/matching/statement?month={month}", ada)
    row = next(h for h in st["hours"] if h["hour"] == hour)
    assert row["matched_wh"] >= amount
    # the page's month share (read before this statement: the meter imports on, so the share can only have fallen
    # since, by a little)
    totals = page.get_by_test_id("match-totals")
    expect(totals).to_contain_text(re.compile(r"[0-9]+\.[0-9]{2} %"))
    shown = re.search(r"([0-9]+)\.([0-9]{2}) %", totals.inner_text())
    assert shown is not None
    shown_bp = int(shown.group(1)) * 100 + int(shown.group(2))
    assert st["share_bp"] <= shown_bp <= st["share_bp"] + 5, (shown_bp, st["share_bp"])
    expect(page.locator(".chart canvas").first).to_be_visible()
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download statement (CSV)").click()
    assert ada.serial in Path(dl.value.path()).read_text(encoding="utf-8")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download the signed claim").click()
    claim = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
    assert claim["claim"]["statement"]["matched_wh"] == st["matched_wh"]
    share = page.get_by_test_id("claim-link").get_attribute("href")
    assert share is not None
    assert share.startswith("/app/claim#")
    assert_clean(page)
    # reports: the period's totals and its CSV / JSON
    page.get_by_role("link", name="Reports").click()
    totals = page.get_by_role("table", name="Totals")
    expect(totals).to_contain_text("Energy sold")
    expect(page.get_by_test_id("report-line").first).to_be_visible()
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download CSV").click()
    assert "grid_fee" in Path(dl.value.path()).read_text(encoding="utf-8")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download JSON").click()
    assert json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))["totals"]["sold_wh"] > 0
    assert_clean(page)
    ctx.close()
    # anyone, logged out, at phone and desktop size: the shared link says valid; a tampered claim is not, inert
    statement = {**claim["claim"]["statement"], "month": XSS_CLAIM_MONTH}
    tampered = {"claim": {**claim["claim"], "statement": statement}, "signature": claim["signature"]}
    for size in (b.PHONE, b.DESKTOP):
        ctx = b.new_context(chromium, viewport=size)
        page = ctx.new_page()
        page.goto(f"{web.base_url}{share}")
        expect(page.get_by_test_id("claim-validity")).to_have_text(
            "Valid: GridTokenX signed this claim and its totals add up.")
        expect(page.get_by_test_id("claim-month")).to_have_text(month)
        assert b.horizontal_overflow(page) == 0
        assert b.axe_serious(page) == []
        page.get_by_label("Paste the claim file's content (JSON)").fill(json.dumps(tampered))
        page.get_by_role("button", name="Check", exact=True).click()
        expect(page.get_by_test_id("claim-validity")).to_have_text(re.compile("^Not valid"))
        expect(page.get_by_test_id("claim-month")).to_have_text(XSS_CLAIM_MONTH)
        assert page.locator("main img, main script").count() == 0
        assert_clean(page)
        ctx.close()


# ---------------------------------------------------------------------------------- every page, both sizes, axe

PAGES = {
    "household": ["dashboard", "meters", "trading", "standing", "matching", "reports", "certificates", "settings"],
    "installer": ["gateways", "settings"],
    "authority": ["certificates", "settings"],
    "admin": ["admin", "gateways", "certificates", "settings"],
    None: ["login", "signup", "verify", "reset", "claim"],
}


def test_every_page_fits_phone_and_desktop_passes_axe_and_renders_user_text_inert(web: WebStack,
                                                                                   chromium: Browser) -> None:
    users = {"household": web.browser_owner, "installer": web.cast.installer, "authority": web.cast.authority,
             "admin": web.cast.admin}
    failures: list[str] = []
    for role, names in PAGES.items():
        for size_name, size in (("phone", b.PHONE), ("desktop", b.DESKTOP)):
            ctx = b.new_context(chromium, viewport=size)
            page = ctx.new_page()
            if role is not None:
                user = users[role]
                b.login(page, web.base_url, user.email, user.password)
            for name in names:
                page.goto(f"{web.base_url}/app/{name}")
                page.get_by_role("heading", level=1).wait_for()
                page.wait_for_load_state("networkidle")
                where = f"{name} as {role or 'visitor'} at {size_name}"
                if (over := b.horizontal_overflow(page)) > 0:
                    failures.append(f"{where}: {over} px of horizontal scroll")
                failures += [f"{where}: axe {v}" for v in b.axe_serious(page)]
                failures += [f"{where}: {p}" for p in b.page_problems(page)]
                if not page.evaluate("window.__xss === undefined"):
                    failures.append(f"{where}: planted markup ran")
                if role == "household" and name in ("dashboard", "trading") and size_name == "desktop":
                    page.screenshot(path=str(ROOT / "docs" / f"web-{name}.png"))
            ctx.close()
    assert failures == []
    # the installer's planted site label and the planted serial: visible as text, never as markup
    ctx = b.new_context(chromium, viewport=b.DESKTOP)
    page = ctx.new_page()
    b.login(page, web.base_url, web.cast.installer.email, web.cast.installer.password)
    expect(page.get_by_test_id("device")).to_contain_text(XSS_LABEL)
    assert page.locator("main img").count() == 0
    assert_clean(page)
    ctx.close()
    ben = web.cast.consumers[0]
    api(web, "POST", "/api/v1/meters/claim", ben, {"serial": XSS_SERIAL, "meter_key": "xss-meter-key-1"})
    ctx = b.new_context(chromium, viewport=b.PHONE)
    page = ctx.new_page()
    b.login(page, web.base_url, ben.email, ben.password)
    page.goto(f"{web.base_url}/app/meters")
    expect(page.get_by_role("list", name="Meters")).to_contain_text(XSS_SERIAL)
    assert page.locator("main img").count() == 0
    assert_clean(page)
    ctx.close()
