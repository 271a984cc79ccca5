"""Test helper process: the embedded (LiteSVM) ledger on its own, serving JSON-RPC, so that every central node
reaches it by RPC (a node that finds the ledger directory owned falls back to ``ledger.rpc_port``) and any node may
be killed. Sets the platform up (dev keys) and prints ``ledger ready <url> <energy mint>`` once it serves; stops on
SIGTERM.

    python ledger_host.py <data_dir> <keys_dir> <rpc_port>
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from central.ledger.config import LedgerConfig
from central.ledger.runtime import running_ledger
from central.ledger.setup import REC_ISSUER_ROLE


async def main(data_dir: str, keys_dir: str, port: int) -> None:
    cfg = LedgerConfig(data_dir=Path(data_dir), keys_dir=Path(keys_dir), rpc_port=port, rpc_ws_port=0,
                       slot_ms=50,
                       create_keys=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with running_ledger(cfg) as runtime:
        assert runtime.setup is not None
        assert runtime.keys is not None
        runtime.keys.load_or_create(REC_ISSUER_ROLE, create=True)  # the certificate issuer's key, as serve makes it
        print("ledger ready", runtime.rpc_url, runtime.setup.energy_mint, flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
