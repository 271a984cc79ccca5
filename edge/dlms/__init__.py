"""The project's own small sans-io DLMS/COSEM client (docs/decisions/0011-own-sans-io-dlms-client.md): A-XDR, AARQ/AARE,
GET, RLRQ/RLRE, HDLC and the IEC 62056-47 TCP wrapper. No I/O here except in ``transport``; no third-party DLMS
library."""
