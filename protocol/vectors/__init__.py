"""Golden test vectors for protocol v1 (``v1.json``), built deterministically from fixed key seeds."""
