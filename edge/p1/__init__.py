"""DSMR P1 customer ports: telegram framing, CRC16, suite-0 decryption and exact conversion (sans-io).

Parsing and decryption use ``dsmr_parser`` (MIT; it decrypts through ``dlms_cosem`` 21.3.2, MIT); see
docs/decisions/0014-dsmr-parser-for-p1.md. The I/O (serial, TCP) lives in ``edge.meters.p1_reader``.
"""
