"""The real stack for the web app's browser tests, started with the demo's own code (tests/demo_support): PostgreSQL
(a fresh database), a private Mosquitto, the meter simulator, central (embedded ledger, serving the built web app)
and the edge daemon. Staff accounts are made through the API; owners other than the one a browser test signs up are
registered, claim their meters and link their wallets through the API, as the demo does."""

from __future__ import annotations

import asyncio
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT / "tests") not in sys.path:
    # demo_support imports itself as a top-level package; appended, so tests/central never shadows central
    sys.path.append(str(ROOT / "tests"))

import aiohttp  # noqa: E402
from demo_support import people, stack  # noqa: E402
from demo_support.api import Api, User  # noqa: E402
from demo_support.people import Cast, Owner  # noqa: E402
from demo_support.procs import Processes  # noqa: E402
from demo_support.report import Gaps  # noqa: E402

from protocol.base58 import b58encode  # noqa: E402

WEB_DIST = ROOT / "central" / "web" / "dist"
#: Every user of these tests (a dozen browsers and the API calls beside them) comes from 127.0.0.1, so their logins
#: and sign-ups share one auth bucket (per address: 1 a second, 20 at once by default): setting up the cast alone
#: spends the burst, and the page tour logging in as each role was refused (429). (Session refreshes, one per full
#: page load, are not in that bucket: ``central.http.ratelimit.TOKEN_ROUTES``.) The limit itself is tested in
#: tests/central; here it allows a dozen people logging in from one address within a minute.
AUTH_RATE = """[http.rate_limit]
auth = { per_s = 20.0, burst = 200 }
"""


@dataclass
class WebStack:
    st: stack.Stack
    procs: Processes
    cast: Cast
    db_name: str

    @property
    def base_url(self) -> str:
        return self.st.base_url

    @property
    def browser_owner(self) -> Owner:
        """The prosumer whose account, wallet link and meter claim the household journey makes in the browser."""
        return self.cast.prosumers[0]

    def api_owners(self) -> list[Owner]:
        return [o for o in self.cast.owners if o is not self.browser_owner]

    def mail_token(self, email: str) -> str:
        return people.verification_token(self.st.settings.state / "mail", email)


async def start(state: Path, *, meters: int = 4, zones: str = "") -> WebStack:
    """Start everything; the caller stops it with :func:`stop` (every process by its PID). ``zones``: a ``[zones]``
    section (TOML) appended to central's configuration (grid zones, fees, losses, tariffs)."""
    if not (WEB_DIST / "index.html").is_file():
        raise RuntimeError(f"the web app is not built ({WEB_DIST}): run `make web`")
    db_name = f"gtx_web_{secrets.token_hex(4)}"
    settings = stack.Settings(root=ROOT, state=state, db_name=db_name, meters=meters, speed=3600, window_s=5,
                              epoch_s=10, poll_s=1)
    procs = Processes(state / "logs", stack.child_env(ROOT))
    stack.fresh_state_dir(state)
    try:
        dsn = await stack.fresh_database(db_name)
        st = stack.prepare(settings, procs, dsn)
        with st.central_toml.open("a", encoding="utf-8") as f:
            f.write("\n" + AUTH_RATE + ("\n" + zones if zones else ""))
        stack.start_broker(st)
        stack.start_simulator(st)
        stack.init_ledger(st, Gaps())
        stack.start_central(st)
        stack.init_edge(st)
        stack.start_edge(st)
        cast = people.make_cast(st)
        web = WebStack(st, procs, cast, db_name)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            api = Api(session, st.base_url)
            await staff_and_owners(api, web)
    except BaseException:
        procs.stop_all()
        await stack.drop_database(db_name)
        raise
    return web


async def staff_and_owners(api: Api, web: WebStack) -> None:
    cast, st = web.cast, web.st
    pw_file = st.settings.state / "admin.password"
    pw_file.write_text(cast.admin.password + "\n", encoding="utf-8")
    pw_file.chmod(0o600)
    r = st.central_cli("users", "create", "--email", cast.admin.email, "--role", "admin", "--password-file",
                       str(pw_file))
    pw_file.unlink()
    if r.returncode != 0:
        raise RuntimeError(f"users create failed: {r.stderr.strip()[-400:]}")
    await people.login(api, cast.admin)
    for staff in (cast.installer, cast.authority):
        await api.post("/api/v1/admin/users", {"email": staff.email, "password": staff.password, "role": staff.role},
                       cast.admin)
        await people.login(api, staff)
    await asyncio.gather(*(people.register(api, st, o) for o in web.api_owners()))


async def owners_claim_and_link(web: WebStack) -> None:
    """Owners other than the browser's claim their meters and link their wallets through the API."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        api = Api(session, web.base_url)
        for o in web.api_owners():
            meter = await api.post("/api/v1/meters/claim", {"serial": o.serial, "meter_key": o.meter_key}, o)
            o.meter_id = meter["id"]
            challenge = await api.post("/api/v1/wallet/link-challenge", {"wallet": o.address}, o)
            signature = o.wallet.sign_message(challenge["message"].encode("utf-8"))
            await api.post("/api/v1/wallet/link", {"message": challenge["message"],
                                                    "signature": b58encode(bytes(signature))}, o)


async def stop(web: WebStack) -> None:
    web.procs.stop_all()
    await stack.drop_database(web.db_name)


async def call(web: WebStack, method: str, path: str, user: User | None = None, body: object = None) -> object:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        return await Api(session, web.base_url).call(method, path, user=user, json=body)
