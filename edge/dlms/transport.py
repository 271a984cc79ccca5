"""Async transports for the DLMS client: IEC 62056-47 wrapper over TCP, and HDLC over a serial line.

OS and pyserial errors become ``DlmsError`` here.
"""

from __future__ import annotations

import asyncio
import contextlib

import serial

from edge.dlms.errors import DlmsError
from edge.dlms.hdlc import Frame, FrameDecoder, HdlcClient
from edge.dlms.wrapper import WrapperDecoder, encode_wrapper


class TcpWrapperTransport:
    """One TCP connection to a meter or gateway; wPorts are the client SAP and the server logical device."""

    def __init__(self, host: str, port: int, client_wport: int, server_wport: int, *, timeout: float) -> None:
        self.host, self.port = host, port
        self.client_wport, self.server_wport = client_wport, server_wport
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._decoder = WrapperDecoder()

    async def open(self) -> None:
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.timeout
            )
        except (OSError, TimeoutError) as exc:
            raise DlmsError(f"cannot connect to {self.host}:{self.port}: {exc or 'timeout'}") from None
        self._decoder = WrapperDecoder()

    async def request(self, apdu: bytes) -> bytes:
        if self._reader is None or self._writer is None:
            raise DlmsError("transport not open")
        try:
            self._writer.write(encode_wrapper(self.client_wport, self.server_wport, apdu))
            await self._writer.drain()
            async with asyncio.timeout(self.timeout):
                while True:
                    data = await self._reader.read(4096)
                    if not data:
                        raise DlmsError("meter closed the connection")
                    for pdu in self._decoder.feed(data):
                        if pdu.source == self.server_wport and pdu.destination == self.client_wport:
                            return pdu.apdu
        except TimeoutError:
            raise DlmsError(f"no answer from {self.host}:{self.port} within {self.timeout} s") from None
        except OSError as exc:
            raise DlmsError(f"connection to {self.host}:{self.port} failed: {exc}") from None

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None


class SerialLine:
    """A serial port read through the event loop, delivering HDLC frames. Shared by all meters on the line."""

    def __init__(self, device: str, *, baudrate: int, bytesize: int, parity: str, stopbits: int) -> None:
        self.device = device
        self._settings = {"baudrate": baudrate, "bytesize": bytesize, "parity": parity, "stopbits": stopbits}
        self._port: serial.Serial | None = None
        self._frames: asyncio.Queue[Frame] = asyncio.Queue()
        self._decoder = FrameDecoder()

    def open(self) -> None:
        if self._port is not None:
            return
        try:
            self._port = serial.Serial(self.device, timeout=0, **self._settings)
        except (serial.SerialException, OSError) as exc:
            raise DlmsError(f"cannot open {self.device}: {exc}") from None
        asyncio.get_running_loop().add_reader(self._port.fileno(), self._readable)

    def _readable(self) -> None:
        assert self._port is not None
        try:
            data = self._port.read(self._port.in_waiting or 1)
        except (serial.SerialException, OSError):
            return
        for frame in self._decoder.feed(data):
            self._frames.put_nowait(frame)

    def flush(self) -> None:
        while not self._frames.empty():
            self._frames.get_nowait()

    def write(self, data: bytes) -> None:
        if self._port is None:
            raise DlmsError(f"{self.device} is not open")
        try:
            self._port.write(data)
        except (serial.SerialException, OSError) as exc:
            raise DlmsError(f"write to {self.device} failed: {exc}") from None

    async def next_frame(self, wait_s: float) -> Frame:
        try:
            return await asyncio.wait_for(self._frames.get(), wait_s)
        except TimeoutError:
            raise DlmsError(f"no answer on {self.device} within {wait_s} s") from None

    def close(self) -> None:
        if self._port is not None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(self._port.fileno())
            self._port.close()
            self._port = None


class HdlcTransport:
    """One HDLC link (SNRM .. DISC) to one server address on a shared :class:`SerialLine`."""

    def __init__(self, line: SerialLine, client_address: int, server_logical: int, server_physical: int, *,
                 timeout: float) -> None:
        self.line = line
        self.link = HdlcClient(client_address, server_logical, server_physical)
        self.timeout = timeout

    async def _exchange(self, frame: bytes | None) -> Frame:
        if frame is not None:
            self.line.write(frame)
        while True:
            f = await self.line.next_frame(self.timeout)
            if f.destination == self.link.local and f.source == self.link.remote:
                return f

    async def open(self) -> None:
        self.line.open()
        self.line.flush()
        self.link.on_connect_reply(await self._exchange(self.link.snrm()))

    async def request(self, apdu: bytes) -> bytes:
        frame: bytes | None = self.link.send(apdu)
        while True:
            reply, response = self.link.receive(await self._exchange(frame))
            if response is not None:
                return response
            frame = reply

    async def close(self) -> None:
        with contextlib.suppress(DlmsError):
            await self._exchange(self.link.disc())
