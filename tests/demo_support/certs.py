"""Stage 6 of the demo: a renewable energy certificate (Token-2022 mint with metadata) issued by the REC authority
for the demo prosumer's verified solar export, a slice transferred to a consumer, who retires it (burn with a memo);
then anyone validates it against the chain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from demo_support.api import Api
from demo_support.people import Cast, Owner
from demo_support.report import kwh, say, short

from central.market.client import sign_transaction_request


@dataclass(frozen=True)
class CertOutcome:
    certificate_id: str
    mint: str
    energy_wh: int
    retired_wh: int
    valid: bool
    transfer_signature: str
    retire_signature: str


async def sign_and_submit(api: Api, o: Owner, request: dict[str, Any]) -> str:
    signed = sign_transaction_request(request["transaction"], o.wallet)
    r = await api.post(f"/api/v1/certificates/requests/{request['request_id']}/submit", {"transaction": signed}, o)
    return str(r["signature"])


async def certificate_story(api: Api, cast: Cast) -> CertOutcome:
    producer, buyer = cast.prosumers[0], cast.consumers[0]
    windows = [m for m in await api.get("/api/v1/mints", producer, limit=1000)
               if m["status"] == "confirmed" and m["meter_id"] == producer.meter_id]
    if not windows:
        raise RuntimeError(f"{producer.label} has no final windows to certify")
    start = min(windows, key=lambda m: m["window_start_ms"])["window_start"]
    end = max(windows, key=lambda m: m["window_start_ms"])["window_end"]
    cert = await api.post("/api/v1/certificates", {"meter_id": producer.meter_id, "period_start": start,
                                                   "period_end": end}, cast.authority)
    say(f"REC authority issued certificate {cert['id']} to {producer.label}: {kwh(cert['energy_wh'])} "
        f"{cert['energy_source']} from {cert['meter_serial']}, {start[11:19]}–{end[11:19]} UTC")
    say(f"  Token-2022 mint {cert['mint']} (metadata on the mint), expires {cert['expires_at'][:10]}, "
        f"readings root {cert['readings_merkle_root'][:16]}…")
    slice_wh = max(1, cert["energy_wh"] // 4)
    transfer = await api.post(f"/api/v1/certificates/{cert['id']}/transfer",
                              {"amount_wh": slice_wh, "to_user_id": buyer.id}, producer)
    t_sig = await sign_and_submit(api, producer, transfer)
    say(f"{producer.label} transferred {kwh(slice_wh)} of it to {buyer.label} (wallet-signed)  tx {short(t_sig)}")
    retire = await api.post(f"/api/v1/certificates/{cert['id']}/retire", {
        "amount_wh": slice_wh, "beneficiary": f"{buyer.label} household", "purpose": "renewable consumption claim",
        "consumption_start": start, "consumption_end": end}, buyer)
    r_sig = await sign_and_submit(api, buyer, retire)
    say(f"{buyer.label} retired {kwh(slice_wh)} (burn + memo naming beneficiary and purpose)  tx {short(r_sig)}")
    v = await api.get("/api/v1/certificates/validate", certificate_id=cert["id"])
    say(f"public validation: valid={v['valid']} status={v['status']} authentic={v['authentic']} "
        f"certified {kwh(v['certified_wh'] or 0)}, supply {kwh(v['supply_wh'] or 0)}, "
        f"retired {kwh(v['retired_wh'] or 0)}, holders {v['holder_accounts']}, database agrees={v['db_agrees']}")
    md = v.get("metadata") or {}
    if md:
        keys = ("meter_serial", "period_start", "period_end", "source", "issuer", "expires")
        shown = [f"{k}={md[k]}" for k in md if any(k.startswith(x) for x in keys)]
        say("  on-chain metadata: " + ", ".join(shown or [f"{k}={v}" for k, v in list(md.items())[:6]]))
    for problem in v.get("problems", []) + v.get("mismatches", []):
        say(f"  problem: {problem}")
    return CertOutcome(cert["id"], cert["mint"], cert["energy_wh"], int(v["retired_wh"] or 0), bool(v["valid"]),
                       t_sig, r_sig)
