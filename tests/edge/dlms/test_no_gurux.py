"""Product code never imports gurux-dlms (GPL, test-only peer): docs/decisions/0011-own-sans-io-dlms-client.md."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_product_modules_do_not_load_gurux() -> None:
    code = (
        "import sys, edge.meters.factory, edge.meters.dlms_reader, edge.dlms.client, edge.dlms.transport, "
        "edge.simulator.modbus, edge.simulator.dlms_gurux; "
        "print(any(m.startswith('gurux') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "False"


def test_no_gurux_import_in_product_sources() -> None:
    for pkg in ("edge/dlms", "edge/meters"):
        for path in (ROOT / pkg).rglob("*.py"):
            text = path.read_text()
            assert "import gurux" not in text, path
            assert "from gurux" not in text, path
