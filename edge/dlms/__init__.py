"""The project's own small sans-io DLMS/COSEM client (DESIGN D11): A-XDR, AARQ/AARE, GET, RLRQ/RLRE, HDLC and the
IEC 62056-47 TCP wrapper. No I/O here except in ``transport``; no third-party DLMS library."""
