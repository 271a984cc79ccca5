"""DSMR P1 customer ports: telegram framing, CRC16, suite-0 decryption and exact conversion (sans-io).

Our own small parser, with ``dsmr_parser`` as its test oracle: docs/decisions/0015-dsmr-parser-for-p1.md. The I/O
(serial, TCP) lives in ``edge.meters.p1_reader``.
"""
