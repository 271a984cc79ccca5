"""`make demo`: the GridTokenX story, end to end, on this machine, with real processes.

1. protocol: a device key signs readings into a chained batch; verified; a flipped bit is caught.
2. processes: fresh `.demo/` state and database, a private Mosquitto, `python -m edge.simulator` (solar prosumers and
   consumers, time fast-forwarded), `gridtokenx-central serve` (embedded ledger + JSON-RPC), `gridtokenx-edge run`.
3. identity, through central's HTTP API only: accounts, the gateway verified through the MQTT challenge, meters
   claimed with their meter keys, wallets linked by signature, verified readings flowing in.
4. minting: the prosumers' energy tokens in their wallets (read from the ledger; equal to the database), and an
   auditor's check of one mint: signed readings -> window Merkle root -> mint leaf -> the memo root on chain.
5. market: faucet, escrow deposits by wallet-signed transaction requests, orders, epoch clearing, on-chain settlement.
6. certificates: issued for a prosumer's solar export, a slice transferred to a consumer who retires it; validated.
7. where to look next; then exit (default) or keep running until Ctrl-C (`--keep-running`, on a terminal).

Every process the demo starts is stopped by its PID at the end, on error and on Ctrl-C. A stage that cannot be
shown because an API is missing or broken is reported with the exact error (and the exit code is 1), never faked.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's code, whatever the venv's editable install points at

from protocol.batch import decode_batch, encode_batch  # noqa: E402
from protocol.keys import DeviceKey  # noqa: E402
from protocol.record import ZERO_HASH, Reading, ReadingFields, sign_reading  # noqa: E402


def protocol_stage() -> None:
    key = DeviceKey.generate()
    print(f"   device id: {key.device_id}  (base58 Ed25519 public key; the secret stays on the device)")
    now = int(time.time() // 60 * 60 * 1000)
    prev, records = ZERO_HASH, []
    imp, exp = 1_204_331, 88_017
    for i, power in enumerate([-1830, -2410, -2650, 410]):
        imp += max(power, 0) // 60
        exp += max(-power, 0) // 60
        r = sign_reading(
            key, ReadingFields(meter_serial="SDM630-DEMO", seq=i + 1, timestamp_ms=now + i * 60_000, import_wh=imp,
                               export_wh=exp, power_w=power, prev_hash=prev),
        )  # fmt: skip
        records.append(r)
        prev = r.hash()
    batch = encode_batch(records)
    verified: list[Reading] = decode_batch(batch)  # decodes and verifies every signature and the batch rules
    print(f"   batch: {len(batch)} bytes, {len(verified)} records, all signatures verified")
    print(f"   {'seq':>3}  {'time (UTC)':19}  {'import Wh':>10}  {'export Wh':>10}  {'power W':>8}  {'hash':16}  prev")
    for r in verified:
        when = datetime.fromtimestamp(r.timestamp_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        print(
            f"   {r.seq:>3}  {when:19}  {r.import_wh:>10}  {r.export_wh:>10}  {r.power_w or 0:>8}  "
            f"{r.hash().hex()[:16]}  {r.prev_hash.hex()[:16]}"
        )
    tampered = bytearray(batch)
    tampered[60] ^= 1
    try:
        decode_batch(bytes(tampered))
    except ValueError as exc:
        print(f"   one flipped bit is caught: {exc}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tests/demo.py", description="The GridTokenX end-to-end demo.")
    p.add_argument("--quick", action="store_true", help="shorter waits and smaller amounts (the test uses it)")
    p.add_argument("--keep-running", action="store_true", help="on a terminal: keep everything running until Ctrl-C")
    p.add_argument("--state-dir", type=Path, default=ROOT / ".demo", help="demo state (deleted at start)")
    p.add_argument("--db", default="gridtokenx_demo", help="PostgreSQL database (dropped and created at start)")
    p.add_argument("--drop-db", action="store_true", help="drop the database at the end")
    p.add_argument("--meters", type=int, default=4, help="simulated meters (alternating prosumer/consumer; >= 2)")
    p.add_argument("--p1", action="store_true", help="one more simulated meter: a DSMR P1 meter pushing telegrams")
    p.add_argument("--speed", type=int, default=3600, help="simulated seconds per real second (default: 1 s = 1 h)")
    p.add_argument("--dlms-ciphered", action="store_true",
                   help="add a ciphered DLMS meter (HLS-GMAC, authenticated+encrypted APDUs) as one more prosumer")
    p.add_argument("--hsm", action="store_true",
                   help="keep every platform key in a SoftHSM2 token (PKCS#11) instead of key files")
    return p


def _on_signal(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.meters < 2:
        print("--meters must be at least 2 (one prosumer and one consumer)", file=sys.stderr)
        return 2
    from demo_support.procs import Processes  # noqa: PLC0415 - after sys.path is set up
    from demo_support.report import Gaps, stage  # noqa: PLC0415
    from demo_support.stack import Settings, child_env, drop_database  # noqa: PLC0415
    from demo_support.story import run_story  # noqa: PLC0415

    # Ctrl-C and SIGTERM raise KeyboardInterrupt wherever the demo is (also inside a blocking wait); the `finally`
    # below then stops every process by its PID
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    print("GridTokenX demo: meters -> edge gateway -> central -> energy tokens -> market -> certificates")
    stage(1, "Protocol v1: readings signed at the edge, chained, batched")
    protocol_stage()
    settings = Settings(root=ROOT, state=args.state_dir.resolve(), db_name=args.db, meters=args.meters,
                        speed=args.speed, window_s=5, epoch_s=6 if args.quick else 10, poll_s=1, hsm=args.hsm,
                        p1=args.p1, dlms_ciphered=args.dlms_ciphered)
    procs = Processes(settings.state / "logs", child_env(ROOT))
    gaps = Gaps()
    code = 0
    try:
        code = asyncio.run(run_story(settings, procs, gaps, quick=args.quick, keep_running=args.keep_running))
    except KeyboardInterrupt:
        print("\ninterrupted")
        code = 130
    finally:
        stopped = procs.stop_all()
        if stopped:
            print("\nstopped: " + ", ".join(f"{name} (pid {pid}, exit {rc})" for name, pid, rc in stopped))
        if args.drop_db:
            with contextlib.suppress(Exception):
                asyncio.run(drop_database(args.db))
    return code


if __name__ == "__main__":
    sys.exit(main())
