"""The remaining identity routes, each exercised to success: resend verification, admin user management (a role
change takes effect at the next refresh), adding meters, re-sending a challenge, the claim audit over HTTP."""

from __future__ import annotations

import asyncio
from uuid import UUID

from central.http.context import CONFIG, SERVICES
from central.http.roles import Role
from central.identity.mailer import read_dev_mail
from protocol.keys import DeviceKey
from tests.central.device import registration

PASSWORD = "a long enough password"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_admin_user_management_and_role_change_on_refresh(api_factory) -> None:
    api = await api_factory()
    admin = await api.token("admin")
    r = await api.client.post("/api/v1/admin/users", headers=bearer(admin),
                              json={"email": "Inst@Example.org", "password": PASSWORD, "role": "installer"})
    assert r.status == 201
    created = await r.json()
    assert created["email_verified"] is True
    r = await api.client.post("/api/v1/admin/users", headers=bearer(admin),
                              json={"email": "inst@example.org", "password": PASSWORD, "role": "installer"})
    assert r.status == 409
    listed = await (await api.client.get("/api/v1/admin/users?limit=1000", headers=bearer(admin))).json()
    assert created["id"] in {u["id"] for u in listed}
    page = await (await api.client.get(f"/api/v1/admin/users?after={created['id']}", headers=bearer(admin))).json()
    assert all(u["id"] > created["id"] for u in page)
    assert (await api.client.get("/api/v1/admin/users?limit=0", headers=bearer(admin))).status == 400

    pair = await (await api.client.post("/api/v1/auth/login",
                                        json={"email": "inst@example.org", "password": PASSWORD})).json()
    assert pair["user"]["role"] == "installer"
    r = await api.client.put(f"/api/v1/admin/users/{created['id']}/role", headers=bearer(admin),
                             json={"role": "prosumer"})
    assert (await r.json())["role"] == "prosumer"
    refreshed = await (await api.client.post("/api/v1/auth/refresh",
                                             json={"refresh_token": pair["refresh_token"]})).json()
    assert refreshed["user"]["role"] == "prosumer"
    r = await api.client.get("/api/v1/meters", headers=bearer(refreshed["access_token"]))
    assert r.status == 200, "the new token carries the new role"
    r = await api.client.put("/api/v1/admin/users/not-a-uuid/role", headers=bearer(admin), json={"role": "admin"})
    assert r.status == 404


async def test_resend_verification(api_factory) -> None:
    api = await api_factory()
    await api.client.post("/api/v1/auth/register", json={"email": "late@example.org", "password": PASSWORD})
    r = await api.client.post("/api/v1/auth/resend-verification", json={"email": "late@example.org"})
    assert r.status == 202
    r = await api.client.post("/api/v1/auth/resend-verification", json={"email": "nobody@example.org"})
    assert r.status == 202
    await api.mailed()
    mails = read_dev_mail(api.app[CONFIG].mailer.dev_dir, to="late@example.org", kind="verify")
    assert len(mails) == 2
    r = await api.client.post("/api/v1/auth/verify-email", json={"token": mails[0].token})
    assert r.status == 200, "an earlier (unexpired, unused) token still works"


async def test_add_meters_resend_challenge_and_claim_audit(api_factory) -> None:
    api = await api_factory()
    installer, admin = await api.token("installer"), await api.token("admin")
    key = DeviceKey.generate()
    await api.client.post("/api/v1/devices", headers=bearer(installer), json={**registration(key)})
    meter = {"serial": "ADD-1", "model": "SDM72", "protocol": "modbus-rtu", "source": None, "meter_key": "k" * 10}
    r = await api.client.post(f"/api/v1/devices/{key.device_id}/meters", headers=bearer(installer), json=[meter])
    assert r.status == 201
    assert [m["serial"] for m in (await r.json())["meters"]] == ["ADD-1"]
    r = await api.client.post(f"/api/v1/devices/{key.device_id}/meters", headers=bearer(installer), json=[meter])
    assert r.status == 409
    r = await api.client.post(f"/api/v1/devices/{key.device_id}/challenge", headers=bearer(installer))
    assert r.status == 202
    assert await r.json() == {"sent": False}, "this configuration runs without a broker"

    owner = await api.token("consumer")
    r = await api.client.post("/api/v1/meters/claim", headers={**bearer(owner), "User-Agent": "ua/1"},
                              json={"serial": "ADD-1", "meter_key": "k" * 10})
    assert r.status == 200
    audit = await (await api.client.get("/api/v1/admin/meter-claim-attempts", headers=bearer(admin))).json()
    assert [(a["serial"], a["outcome"], a["user_agent"]) for a in audit] == [("ADD-1", "claimed", "ua/1")]


async def test_last_admin_cannot_demote_itself(api_factory) -> None:
    """Issue 10 D15: demoting the only admin is refused with 409; with two admins, concurrent mutual demotion leaves
    one."""
    api = await api_factory()
    accounts = api.app[SERVICES].identity.accounts
    email, admin = await api.user("admin")
    users = await (await api.client.get("/api/v1/admin/users?limit=1000", headers=bearer(admin))).json()
    me = next(u for u in users if u["email"] == email)
    r = await api.client.put(f"/api/v1/admin/users/{me['id']}/role", headers=bearer(admin), json={"role": "prosumer"})
    assert r.status == 409
    assert (await r.json())["error"]["code"] == "last_admin"

    other = await accounts.create_user("second-admin@example.org", PASSWORD, Role.ADMIN, verified=True)
    results = await asyncio.gather(accounts.set_role(other.id, Role.PROSUMER),
                                   accounts.set_role(UUID(me["id"]), Role.PROSUMER),
                                   return_exceptions=True)
    assert sum(1 for x in results if isinstance(x, Exception)) == 1
    users = await (await api.client.get("/api/v1/admin/users?limit=1000", headers=bearer(admin))).json()
    assert sum(1 for u in users if u["role"] == "admin") == 1
