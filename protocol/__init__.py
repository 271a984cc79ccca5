"""GridTokenX wire protocol v1: canonical signed reading records, batches, challenges, acks, chain resync,
wallet-link messages and MQTT topics. Pure: standard library and ``cryptography`` only, no I/O."""

VERSION = 1
