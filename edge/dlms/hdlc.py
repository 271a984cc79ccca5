"""HDLC framing for DLMS/COSEM on serial lines (IEC 62056-46), client side, sans-io.

Frame: ``7E | format(2) | destination | source | control | [HCS(2) | information] | FCS(2) | 7E``. The format
field is type 0xA, the segmentation bit and an 11-bit length. HCS and FCS are CRC-16/X.25, least significant byte
first. Addresses use the extension-bit encoding (LSB = 1 on the last byte); a server address carries the logical
device (upper) and the physical device (lower) address.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.dlms.errors import DlmsDecodeError, DlmsError

FLAG = 0x7E
SNRM, DISC, UA, DM, FRMR, UI = 0x93, 0x53, 0x73, 0x1F, 0x97, 0x13
POLL = 0x10
LLC_REQUEST = b"\xe6\xe6\x00"
LLC_RESPONSE = b"\xe6\xe7\x00"
DEFAULT_MAX_INFO = 128
MAX_FRAME = 0x7FF


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """CRC-16/X.25 (reflected 0x1021, init 0xFFFF, xorout 0xFFFF); ``crc16(b"123456789") == 0x906E``."""
    crc = 0xFFFF
    for b in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFF


def encode_address(upper: int, lower: int | None = None, size: int | None = None) -> bytes:
    """Extension-bit encoding. ``lower`` None gives a one-byte (client or logical-only) address."""
    if lower is None:
        if not 0 <= upper < 0x80:
            raise ValueError("one-byte HDLC address must be < 128")
        return bytes([(upper << 1) | 1])
    if size is None:
        size = 2 if upper < 0x80 and lower < 0x80 else 4
    if size == 2:
        if not (0 <= upper < 0x80 and 0 <= lower < 0x80):
            raise ValueError("two-byte server address parts must be < 128")
        return bytes([upper << 1, (lower << 1) | 1])
    if not (0 <= upper < 0x4000 and 0 <= lower < 0x4000):
        raise ValueError("server address parts must be < 16384")
    return bytes([(upper >> 7) << 1, (upper & 0x7F) << 1, (lower >> 7) << 1, ((lower & 0x7F) << 1) | 1])


def decode_address(raw: bytes) -> tuple[int, int | None]:
    """(upper, lower) of an encoded address; lower is None for one-byte addresses."""
    groups = [b >> 1 for b in raw]
    if len(raw) == 1:
        return groups[0], None
    if len(raw) == 2:
        return groups[0], groups[1]
    if len(raw) == 4:
        return (groups[0] << 7) | groups[1], (groups[2] << 7) | groups[3]
    raise DlmsDecodeError(f"HDLC address of {len(raw)} bytes")


@dataclass(frozen=True, slots=True)
class Frame:
    destination: bytes
    source: bytes
    control: int
    info: bytes = b""
    segmented: bool = False

    @property
    def is_i_frame(self) -> bool:
        return self.control & 0x01 == 0

    @property
    def is_rr(self) -> bool:
        return self.control & 0x0F == 0x01

    @property
    def ns(self) -> int:
        return (self.control >> 1) & 0x07

    @property
    def nr(self) -> int:
        return (self.control >> 5) & 0x07


def encode_frame(f: Frame) -> bytes:
    header_len = 2 + len(f.destination) + len(f.source) + 1
    length = header_len + 2 + (2 + len(f.info) if f.info else 0)
    if length > MAX_FRAME:
        raise ValueError("HDLC frame too long")
    fmt = 0xA000 | (0x0800 if f.segmented else 0) | length
    body = fmt.to_bytes(2, "big") + f.destination + f.source + bytes([f.control])
    if f.info:
        body += crc16(body).to_bytes(2, "little") + f.info
    body += crc16(body).to_bytes(2, "little")
    return bytes([FLAG]) + body + bytes([FLAG])


def _split_addresses(body: bytes) -> tuple[bytes, bytes, int]:
    pos = 2
    parts = []
    for _ in range(2):
        start = pos
        while pos < len(body) and not body[pos] & 1:
            pos += 1
        if pos >= len(body) or pos - start >= 4:
            raise DlmsDecodeError("bad HDLC address field")
        pos += 1
        parts.append(body[start:pos])
    return parts[0], parts[1], pos


def decode_frame(raw: bytes) -> Frame:
    """Decode one complete frame including both flags; checks format, length, HCS and FCS."""
    if len(raw) < 9 or raw[0] != FLAG or raw[-1] != FLAG:
        raise DlmsDecodeError("not an HDLC frame")
    body = raw[1:-1]
    fmt = int.from_bytes(body[:2], "big")
    if fmt & 0xF000 != 0xA000:
        raise DlmsDecodeError("not an HDLC type-3 frame")
    if fmt & 0x7FF != len(body):
        raise DlmsDecodeError("HDLC length mismatch")
    if crc16(body[:-2]) != int.from_bytes(body[-2:], "little"):
        raise DlmsDecodeError("HDLC FCS mismatch")
    dst, src, pos = _split_addresses(body)
    if pos >= len(body) - 2:
        raise DlmsDecodeError("HDLC frame without control field")
    control = body[pos]
    pos += 1
    info = b""
    if len(body) - 2 > pos:
        if len(body) - 2 < pos + 2:
            raise DlmsDecodeError("HDLC frame with truncated HCS")
        if crc16(body[:pos]) != int.from_bytes(body[pos : pos + 2], "little"):
            raise DlmsDecodeError("HDLC HCS mismatch")
        info = bytes(body[pos + 2 : -2])
    return Frame(dst, src, control, info, bool(fmt & 0x0800))


class FrameDecoder:
    """Incremental frame reader: feed bytes from the line, get valid frames. Garbage and bad CRCs are skipped."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.errors = 0

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        while True:
            start = self._buf.find(FLAG)
            if start < 0:
                self._buf.clear()
                return frames
            del self._buf[:start]
            # Skip fill flags (7E 7E ...) between frames.
            while len(self._buf) >= 2 and self._buf[1] == FLAG:
                del self._buf[0]
            if len(self._buf) < 3:
                return frames
            length = int.from_bytes(self._buf[1:3], "big") & 0x7FF
            if self._buf[1] & 0xF0 != 0xA0 or length < 7:
                self.errors += 1
                del self._buf[0]
                continue
            if len(self._buf) < length + 2:
                return frames
            raw = bytes(self._buf[: length + 2])
            try:
                frames.append(decode_frame(raw))
                del self._buf[: length + 1]  # keep the closing flag: it may open the next frame
            except DlmsDecodeError:
                self.errors += 1
                del self._buf[0]


def parse_ua_parameters(info: bytes) -> dict[int, int]:
    """Negotiated parameters from a UA (or SNRM) information field: {5: max info tx, 6: max info rx, 7, 8: windows}."""
    if not info:
        return {}
    if len(info) < 3 or info[0] != 0x81 or info[1] != 0x80:
        raise DlmsDecodeError("bad HDLC parameter field")
    params: dict[int, int] = {}
    pos, end = 3, min(len(info), 3 + info[2])
    while pos + 2 <= end:
        pid, n = info[pos], info[pos + 1]
        params[pid] = int.from_bytes(info[pos + 2 : pos + 2 + n], "big")
        pos += 2 + n
    return params


class HdlcClient:
    """Client side of one HDLC link to one server address: connection, I-frame sequencing and segmentation."""

    def __init__(self, client_address: int, server_logical: int, server_physical: int, *,
                 max_info_tx: int = DEFAULT_MAX_INFO, max_info_rx: int = DEFAULT_MAX_INFO) -> None:
        self.local = encode_address(client_address)
        self.remote = encode_address(server_logical, server_physical)
        self.max_info_tx, self.max_info_rx = max_info_tx, max_info_rx
        self._vs = 0
        self._vr = 0
        self._pending: list[bytes] = []
        self._received = bytearray()

    def _frame(self, control: int, info: bytes = b"", segmented: bool = False) -> bytes:
        return encode_frame(Frame(self.remote, self.local, control, info, segmented))

    def snrm(self) -> bytes:
        return self._frame(SNRM)

    def disc(self) -> bytes:
        return self._frame(DISC)

    def check_frame(self, f: Frame) -> None:
        if f.destination != self.local or f.source != self.remote:
            raise DlmsDecodeError("HDLC frame for another address")

    def on_connect_reply(self, f: Frame) -> None:
        """Handle the answer to SNRM: UA starts a fresh link, DM means refused."""
        self.check_frame(f)
        if f.control | POLL != UA:
            raise DlmsError(f"meter refused the HDLC connection (control 0x{f.control:02x})")
        params = parse_ua_parameters(f.info)
        # The server's transmit limit is our receive limit and vice versa.
        self.max_info_rx = params.get(5, self.max_info_rx)
        self.max_info_tx = params.get(6, self.max_info_tx)
        self._vs = self._vr = 0

    def _i_frame(self, info: bytes, segmented: bool) -> bytes:
        control = (self._vr << 5) | POLL | (self._vs << 1)
        self._vs = (self._vs + 1) % 8
        return self._frame(control, info, segmented)

    def send(self, apdu: bytes) -> bytes:
        """First frame of ``apdu``; later segments go out as the server acknowledges (see :meth:`receive`)."""
        payload = LLC_REQUEST + apdu
        chunks = [payload[i : i + self.max_info_tx] for i in range(0, len(payload), self.max_info_tx)]
        self._received.clear()
        self._pending = chunks[1:]
        return self._i_frame(chunks[0], segmented=bool(self._pending))

    def receive(self, f: Frame) -> tuple[bytes | None, bytes | None]:
        """Process one frame from the server: (frame to send or None, complete response APDU or None)."""
        self.check_frame(f)
        if f.is_rr:
            if not self._pending:
                return None, None
            chunk = self._pending.pop(0)
            return self._i_frame(chunk, segmented=bool(self._pending)), None
        if not f.is_i_frame:
            raise DlmsError(f"unexpected HDLC frame (control 0x{f.control:02x})")
        if f.ns != self._vr:
            raise DlmsDecodeError(f"HDLC sequence error: got N(S)={f.ns}, expected {self._vr}")
        self._vr = (self._vr + 1) % 8
        self._received += f.info
        if f.segmented:
            return self._frame((self._vr << 5) | POLL | 0x01), None
        data = bytes(self._received)
        self._received.clear()
        if not data.startswith(LLC_RESPONSE):
            raise DlmsDecodeError("response without LLC header")
        return None, data[len(LLC_RESPONSE) :]
