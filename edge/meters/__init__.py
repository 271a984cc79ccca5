"""Meter access: register maps (data), Modbus and DLMS/COSEM readers, per-bus serialisation."""
