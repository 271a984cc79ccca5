"""Active sessions (settings page, issue 12): every login of mine with its browser, when it began and was last used;
ending one (its refresh token stops working) or all of them ("log out everywhere"); nobody else's."""

from __future__ import annotations

import uuid
from typing import Any

PASSWORD = "a long enough password"
PHONE = "Mozilla/5.0 (Linux; Android 14) Mobile Safari/537.36"
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _login(api: Any, email: str, agent: str) -> dict[str, Any]:
    r = await api.client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD},
                              headers={"User-Agent": agent})
    assert r.status == 200, await r.text()
    return dict(await r.json())


async def _sessions(api: Any, token: str) -> list[dict[str, Any]]:
    r = await api.client.get("/api/v1/me/sessions", headers=bearer(token))
    assert r.status == 200, await r.text()
    return list(await r.json())


async def test_list_end_one_and_end_all(api_factory: Any) -> None:
    api = await api_factory()
    email, first = await api.user("prosumer", password=PASSWORD)
    _, stranger = await api.user("consumer", password=PASSWORD)
    phone = await _login(api, email, PHONE)
    desktop = await _login(api, email, DESKTOP)
    # the phone refreshes: a rotation keeps the login's browser and counts as a use
    r = await api.client.post("/api/v1/auth/refresh", json={"refresh_token": phone["refresh_token"]},
                              headers={"User-Agent": "something else"})
    assert r.status == 200
    phone = dict(await r.json())

    listed = await _sessions(api, desktop["access_token"])
    assert len(listed) == 3  # the helper's login, the phone, the desktop
    by_agent = {s["user_agent"]: s for s in listed}
    assert set(by_agent) >= {PHONE, DESKTOP}
    assert by_agent[DESKTOP]["current"] is True
    assert [s["current"] for s in listed].count(True) == 1
    assert listed[0]["user_agent"] == PHONE, "last used first"
    assert by_agent[PHONE]["last_used_at"] > by_agent[PHONE]["created_at"]
    theirs = await _sessions(api, stranger)
    assert len(theirs) == 1
    assert theirs[0]["user_agent"] not in (PHONE, DESKTOP)

    phone_id = by_agent[PHONE]["id"]
    r = await api.client.delete(f"/api/v1/me/sessions/{phone_id}", headers=bearer(stranger))
    assert r.status == 404, "somebody else's session"
    r = await api.client.delete(f"/api/v1/me/sessions/{phone_id}", headers=bearer(desktop["access_token"]))
    assert r.status == 204
    r = await api.client.post("/api/v1/auth/refresh", json={"refresh_token": phone["refresh_token"]})
    assert r.status == 401, "an ended session cannot refresh"
    assert {s["id"] for s in await _sessions(api, desktop["access_token"])} == {s["id"] for s in listed} - {phone_id}
    r = await api.client.delete(f"/api/v1/me/sessions/{phone_id}", headers=bearer(desktop["access_token"]))
    assert r.status == 404, "already ended"
    r = await api.client.delete(f"/api/v1/me/sessions/{uuid.uuid4()}", headers=bearer(first))
    assert r.status == 404

    r = await api.client.delete("/api/v1/me/sessions", headers=bearer(desktop["access_token"]))
    assert r.status == 204
    r = await api.client.post("/api/v1/auth/refresh", json={"refresh_token": desktop["refresh_token"]})
    assert r.status == 401, "log out everywhere ends this session too"
    assert await _sessions(api, first) == []
    assert len(await _sessions(api, stranger)) == 1, "nobody else's sessions end"


async def test_sessions_need_a_login(api_factory: Any) -> None:
    api = await api_factory()
    r = await api.client.get("/api/v1/me/sessions")
    assert r.status == 401
    r = await api.client.delete("/api/v1/me/sessions")
    assert r.status == 401
