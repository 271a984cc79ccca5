"""The edge daemon's one exception tree. Adapters translate library errors (pymodbus, paho, sqlite3, serial)
into these at the boundary."""

import gtxconfig.errors


class EdgeError(Exception):
    """Base of every error the edge raises on purpose."""


class ConfigError(EdgeError, gtxconfig.errors.ConfigError):
    """Configuration or data file is invalid; the message names the file, line and reason."""


class MeterError(EdgeError):
    """A meter did not answer or answered nonsense. Never turned into a made-up reading."""


class RegisterJumpError(EdgeError):
    """A register rose faster than the gateway's meters can (a garbled read: swapped Modbus words, a bad map), or
    fell. Signed, a rise would be accepted and minted, and every correct reading after it refused as lower; a fall
    would be refused by central for good, and so would every reading after it. So it is not signed."""

    def __init__(self, serial: str, register: str, rise_wh: int, allowed_wh: int) -> None:
        self.serial, self.register, self.rise_wh, self.allowed_wh = serial, register, rise_wh, allowed_wh
        if rise_wh < 0:
            super().__init__(f"{register} register of {serial} fell {-rise_wh:,} Wh since its last reading; a "
                             "meter's registers never fall")
        else:
            super().__init__(f"{register} register of {serial} rose {rise_wh:,} Wh since its last reading; at most "
                             f"{allowed_wh:,} Wh is possible in that time")


class ClockBehindError(EdgeError):
    """A reading older than the same meter's last stored one: the gateway clock went back. Central would reject it
    for good (``bad_timestamp``), so it is not signed."""

    def __init__(self, serial: str, last_ms: int, given_ms: int) -> None:
        self.serial, self.last_ms, self.given_ms = serial, last_ms, given_ms
        super().__init__(f"reading of {serial} at {given_ms} ms is older than its last stored one ({last_ms} ms)")
