"""Meter simulators for tests, the demo and central's tests: Modbus (pymodbus server over TCP and RTU on a pty
pair) with realistic cumulative registers, and a DLMS/COSEM meter built on gurux-dlms (test/dev only)."""
