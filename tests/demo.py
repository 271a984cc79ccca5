"""`make demo`: the GridTokenX story, end to end, on this machine.

Stage 1 (protocol): generate a device key, sign a few readings into a chained batch, verify and print them.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

from protocol.batch import decode_batch, encode_batch
from protocol.keys import DeviceKey
from protocol.record import ZERO_HASH, Reading, sign_reading


def protocol_stage() -> None:
    key = DeviceKey.generate()
    print(f"device id: {key.device_id}  (base58 Ed25519 public key; the secret stays on the device)")
    now = int(time.time() // 60 * 60 * 1000)
    prev, records = ZERO_HASH, []
    imp, exp = 1_204_331, 88_017
    for i, power in enumerate([-1830, -2410, -2650, 410]):
        imp += max(power, 0) // 60
        exp += max(-power, 0) // 60
        r = sign_reading(
            key, meter_serial="SDM630-DEMO", seq=i + 1, timestamp_ms=now + i * 60_000, import_wh=imp,
            export_wh=exp, power_w=power, prev_hash=prev,
        )  # fmt: skip
        records.append(r)
        prev = r.hash()
    batch = encode_batch(records)
    verified: list[Reading] = decode_batch(batch)  # decodes and verifies every signature and the batch rules
    print(f"batch: {len(batch)} bytes, {len(verified)} records, all signatures verified\n")
    print(f"{'seq':>3}  {'time (UTC)':19}  {'import Wh':>10}  {'export Wh':>10}  {'power W':>8}  {'hash':16}  prev")
    for r in verified:
        when = datetime.fromtimestamp(r.timestamp_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        print(
            f"{r.seq:>3}  {when:19}  {r.import_wh:>10}  {r.export_wh:>10}  {r.power_w or 0:>8}  "
            f"{r.hash().hex()[:16]}  {r.prev_hash.hex()[:16]}"
        )
    tampered = bytearray(batch)
    tampered[60] ^= 1
    try:
        decode_batch(bytes(tampered))
    except ValueError as exc:
        print(f"\none flipped bit is caught: {exc}")


def main() -> int:
    print("== GridTokenX demo — stage 1: signed readings (protocol v1)\n")
    protocol_stage()
    return 0


if __name__ == "__main__":
    sys.exit(main())
