# ruff: noqa: N802, N803, ARG002 - gurux's server API: camelCase hooks whose arguments we do not all need.
"""A simulated DLMS/COSEM electricity meter built on gurux-dlms, serving the IEC 62056-47 TCP wrapper or HDLC on a
serial line (a pty in tests).

gurux-dlms is GPL-2.0 and a test/dev-only dependency (the ``dev`` extra): it is imported lazily, only here, and
only tests and the demo import this module. Product code (``edge.dlms``, ``edge.meters``) never imports gurux; it
serves as an independent peer to test our own client against (docs/decisions/0011-own-sans-io-dlms-client.md).

Workarounds for gurux-dlms 1.0.203 acting as a server:

- ``GXDLMSLNCommandHandler`` calls ``server.notifyRead()`` which ``GXDLMSServer`` does not define, and calls
  ``server.onPostRead()`` without the ``args`` argument the base class declares: both defined here.
- The handler calls ``sr.setReply``, ``sr.getConnectionInfo`` and ``sr.setCount`` which ``GXServerReply`` lacks:
  :class:`_Reply` adds them.
- ``handleSnrmRequest`` dereferences ``self.hdlc`` (None by default) and calls a missing ``GXHdlcSettings.update``:
  the SNRM handler is replaced by one that negotiates our configured maximum information length.
- ``initialize()`` without an association object appends the object collection itself to the default
  association's object list and fails: an association object is added up front.
- ``handleReleaseRequest`` omits the LLC header on HDLC and mis-sizes the RLRE; the UA parameter length is
  written with swapped arguments: both replaced.
- Secure server (``GXDLMSSecureServer``), nine more:
  its constructor stores the ciphering as ``settings.ciphering`` while all code reads ``settings.cipher``;
  ``generateAARE`` crashes on the system title and mis-sizes the challenge (replaced, :func:`_fix_aare`);
  the glo-initiate-response does not advance the invocation counter (the next APDU would reuse it);
  ``handleGloDedRequest`` passes its keys one argument off, so no glo- request deciphers (:func:`_fix_glo_request`);
  the association's ``invoke`` for reply_to_HLS_authentication calls ``int()`` on the octet-string parameter (HLS
  pass 3/4 is done here with gurux's own ``GXSecure.secure``); ``handleMethodRequest`` calls ``list()`` on a single
  ``ValueEventArgs`` (made iterable); the LN command handler calls a missing ``server.notifyConnected``,
  ``settings.setConnected`` and ``association.getAssociationStatus`` (all supplied).
  gurux checks neither the client's invocation counter nor the configured security: a decipher hook refuses a
  counter below the next one the meter accepts (answering exception-response invocation-counter-error, as meters
  do, and counting it), the frame-counter object 0-0:43.1.0.255 reports that next counter, and an AARQ with less
  than the meter's policy is refused here.
- ``GXDLMSRegister.scaler`` is the *multiplier* (10**scaler), and the exponent sent for attribute 3 is computed as
  ``floor(log10(multiplier))``, which is off by one for 1000 (log gives 2.9999...). Registers here keep the
  integer exponent and encode attribute 3 themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace, TracebackType
from typing import Any

from edge.simulator.profiles import SimulatedRegisters, TimeSource

# OBIS -> (exponent, DLMS unit code, measurement name); values are kept in base units (Wh, W).
DEFAULT_REGISTERS: dict[str, tuple[int, int, str]] = {
    "1.0.1.8.0.255": (0, 30, "energy_import"),  # Wh
    "1.0.2.8.0.255": (0, 30, "energy_export"),  # Wh
    "1.0.16.7.0.255": (0, 27, "power_active"),  # W
    "1.0.32.7.0.255": (-1, 35, "voltage_l1"),  # V, 0.1 V resolution
}


@dataclass
class DlmsMeterSecurity:
    """A ciphered meter's settings: authentication ``none`` | ``low`` | ``high-gmac``; ``policy`` the SC bits
    required on every xDLMS APDU (0, 0x10, 0x20, 0x30); global keys and the meter's system title."""

    ek: bytes
    ak: bytes
    system_title: bytes = bytes.fromhex("4C475A0012345678")
    authentication: str = "high-gmac"
    policy: int = 0x30
    #: The next client invocation counter the meter accepts (a counter below it is a replay).
    next_client_counter: int = 0
    #: The meter's own invocation counter (for its responses and pushes).
    server_counter: int = 1
    frame_counter_obis: str = "0.0.43.1.0.255"
    rejected: int = 0


@dataclass
class DlmsMeterModel:
    """What the simulated meter measures; shared by every connection to it."""

    state: SimulatedRegisters
    time_source: TimeSource
    password: bytes | None = None  # LLS password; None = lowest-level security only
    security: DlmsMeterSecurity | None = None  # HLS-GMAC / ciphering (GXDLMSSecureServer)
    registers: dict[str, tuple[int, int, str]] | None = None
    #: Exponent used when reporting energy: 3 reports kWh-resolution registers as value * 10**3 Wh.
    online: bool = True
    reads: int = 0
    pushes: int = 0
    #: Raw register values by measurement name, instead of the simulated profile (tests pin exact values).
    pinned: dict[str, int] | None = None
    #: The logical device name (0.0.42.0.0.255), starting with the manufacturer's FLAG id; None = not present.
    logical_device_name: bytes | None = None

    def raw_value(self, obis: str) -> int:
        regs = self.registers or DEFAULT_REGISTERS
        exponent, _unit, name = regs[obis]
        self.reads += 1
        if self.pinned is not None and name in self.pinned:
            return self.pinned[name]
        value = self.state.snapshot(self.time_source())[name]
        scaled = value / 10**exponent
        return int(scaled) if name.startswith("energy") else round(scaled)


def _gurux() -> SimpleNamespace:
    """Import gurux lazily (GPL, test-only): nothing imports it at module import time."""
    import gurux_dlms  # noqa: PLC0415 - lazy on purpose, see docstring
    from gurux_dlms import enums  # noqa: PLC0415
    from gurux_dlms._GXAPDU import _GXAPDU  # noqa: PLC0415
    from gurux_dlms._HDLCInfo import _HDLCInfo  # noqa: PLC0415
    from gurux_dlms.AesGcmParameter import AesGcmParameter  # noqa: PLC0415
    from gurux_dlms.ConnectionState import ConnectionState  # noqa: PLC0415
    from gurux_dlms.GXCiphering import GXCiphering  # noqa: PLC0415
    from gurux_dlms.GXDLMS import GXDLMS  # noqa: PLC0415
    from gurux_dlms.GXSecure import GXSecure  # noqa: PLC0415
    from gurux_dlms.internal._GXCommon import _GXCommon  # noqa: PLC0415
    from gurux_dlms.objects import GXDLMSAssociationLogicalName, GXDLMSData, GXDLMSRegister  # noqa: PLC0415
    from gurux_dlms.objects.enums import AssociationStatus  # noqa: PLC0415
    from gurux_dlms.secure import GXDLMSSecureServer  # noqa: PLC0415
    from gurux_dlms.ValueEventArgs import ValueEventArgs  # noqa: PLC0415

    _hook_decrypt(GXCiphering)
    _fix_glo_request(GXDLMS, GXCiphering, AesGcmParameter)
    if not hasattr(ValueEventArgs, "__iter__"):  # handleMethodRequest calls list(e) on one ValueEventArgs
        ValueEventArgs.__iter__ = lambda self: iter([self])
    _fix_aare(_GXAPDU, enums.Authentication)

    return SimpleNamespace(
        GXByteBuffer=gurux_dlms.GXByteBuffer,
        GXDLMSServer=gurux_dlms.GXDLMSServer,
        GXServerReply=gurux_dlms.GXServerReply,
        AccessMode=enums.AccessMode,
        Authentication=enums.Authentication,
        DataType=enums.DataType,
        InterfaceType=enums.InterfaceType,
        MethodAccessMode=enums.MethodAccessMode,
        SourceDiagnostic=enums.SourceDiagnostic,
        HDLCInfo=_HDLCInfo,
        ConnectionState=ConnectionState,
        GXDLMS=GXDLMS,
        GXCommon=_GXCommon,
        GXDLMSAssociationLogicalName=GXDLMSAssociationLogicalName,
        GXDLMSRegister=GXDLMSRegister,
        GXDLMSData=GXDLMSData,
        GXDLMSSecureServer=GXDLMSSecureServer,
        GXSecure=GXSecure,
        Security=enums.Security,
        AssociationStatus=AssociationStatus,
    )


def _ber(tag: int, body: bytes) -> bytes:
    assert len(body) < 0x80
    return bytes([tag, len(body)]) + body


def _fix_aare(apdu: Any, authentication: Any) -> None:
    """gurux 1.0.203's ``generateAARE`` crashes on the responding-AP-title (``setUInt8()`` without a value) and
    mis-sizes the responding-authentication-value: build the AARE here; gurux still makes the user-information
    (its own InitiateResponse, ciphered by its own code)."""
    if getattr(apdu, "_gtx_fixed", False):
        return

    def generate(cls: Any, settings: Any, data: Any, result: Any, diagnostic: Any, cipher: Any, error: Any,
                 encrypted: Any) -> None:  # noqa: ARG001 - gurux's signature
        ciphered = bool(cipher and cipher.isCiphered())
        hls = settings.authentication > authentication.LOW
        context = bytes.fromhex("60857405080103" if ciphered else "60857405080101")
        body = _ber(0xA1, _ber(0x06, context))
        body += _ber(0xA2, _ber(0x02, bytes([int(result)])))
        body += _ber(0xA3, _ber(0xA1, _ber(0x02, bytes([int(diagnostic)]))))
        if cipher and (hls or ciphered):
            body += _ber(0xA4, _ber(0x04, bytes(cipher.systemTitle)))
        if hls:
            body += _ber(0x88, b"\x07\x80")
            body += _ber(0x89, bytes.fromhex("608574050802") + bytes([int(settings.authentication)]))
            body += _ber(0xAA, _ber(0x80, bytes(settings.stoCChallenge)))
        if error:
            info = bytes(error.array() if hasattr(error, "array") else error)
        elif int(result) == 0:
            info = bytes(cls.getUserInformation(settings, cipher))
            if ciphered:  # gurux does not count the glo-initiate-response: the next APDU would reuse its IC
                cipher.invocationCounter += 1
        else:
            info = b""
        if info:
            body += _ber(0xBE, _ber(0x04, info))
        data.set(bytes([0x61, len(body)]) + body)

    apdu.generateAARE = classmethod(generate)
    apdu._gtx_fixed = True


def _fix_glo_request(dlms: Any, ciphering: Any, parameter: Any) -> None:
    """gurux 1.0.203's ``handleGloDedRequest`` builds its AesGcmParameter without the tag argument, so every key
    shifts one place and no glo- request deciphers: the same steps with the arguments in place."""
    if getattr(dlms, "_gtx_glo_fixed", False):
        return

    def handle(cls: Any, settings: Any, data: Any) -> None:  # noqa: ARG001 - a classmethod's cls
        if (data.moreData & 1) != 0:  # RequestTypes.FRAME: wait for the whole APDU
            data.data.position = data.data.position - 1
            return
        data.data.position = data.data.position - 1
        cipher = settings.cipher
        p = parameter(0, settings.sourceSystemTitle, cipher.blockCipherKey, cipher.authenticationKey)
        tmp = ciphering.decrypt(settings, p, data.data)
        data.data.clear()
        data.data.set(tmp)
        data.command = type(data.command)(data.data.getUInt8())

    dlms.handleGloDedRequest = classmethod(handle)
    dlms._gtx_glo_fixed = True


def _hook_decrypt(ciphering: Any) -> None:
    """Let a server see the invocation counter of every APDU gurux deciphers for it (gurux checks none)."""
    if getattr(ciphering, "_gtx_hooked", False):
        return
    original = ciphering.decrypt.__func__

    def decrypt(cls: Any, settings: Any, p: Any, data: Any) -> Any:
        out = original(cls, settings, p, data)
        hook = getattr(settings, "gtx_on_counter", None)
        if hook is not None:
            hook(p.invocationCounter)
        return out

    ciphering.decrypt = classmethod(decrypt)
    ciphering._gtx_hooked = True


def build_server(model: DlmsMeterModel, *, hdlc: bool, logical: int = 1, physical: int = 17,
                 max_info: int = 128) -> Any:
    """A gurux ``GXDLMSServer`` for one connection (gurux keeps per-connection state in the server object)."""
    g = _gurux()

    register_base: Any = g.GXDLMSRegister
    sec = model.security
    server_base: Any = g.GXDLMSServer if sec is None else g.GXDLMSSecureServer
    data_base: Any = g.GXDLMSData
    association_base: Any = g.GXDLMSAssociationLogicalName
    counter_error: list[int] = []

    class FrameCounter(data_base):  # type: ignore[misc]
        """0-0:43.1.0.255: the next client invocation counter the meter accepts."""

        def getValue(self, settings: Any, e: Any) -> Any:
            if e.index == 2:
                assert sec is not None
                return sec.next_client_counter
            return super().getValue(settings, e)

    class Association(association_base):  # type: ignore[misc]
        def getAssociationStatus(self) -> Any:  # called by the LN command handler, not defined by gurux
            return self.associationStatus

        def invoke(self, settings: Any, e: Any) -> Any:
            if e.index != 1 or sec is None:
                return super().invoke(settings, e)
            # reply_to_HLS_authentication, pass 3/4 (gurux's own int(bytes) fails).
            answer = bytes(e.parameters or b"")
            ic = int.from_bytes(answer[1:5], "big") if len(answer) == 17 else 0
            expected = g.GXSecure.secure(settings, settings.cipher, ic, settings.stoCChallenge,
                                         settings.sourceSystemTitle)
            counter_error.clear()
            if int(settings.cipher.security) == 0:  # in clear the f(StoC) counter is the only one to check
                settings.gtx_on_counter(ic)
            if bytes(expected) != answer or counter_error:
                self.associationStatus = g.AssociationStatus.NON_ASSOCIATED
                sec.rejected += 1
                e.error = 3  # read-write denied
                return None
            self.associationStatus = g.AssociationStatus.ASSOCIATED
            sec.server_counter += 1
            reply = g.GXSecure.secure(settings, settings.cipher, sec.server_counter, settings.ctoSChallenge,
                                      settings.cipher.systemTitle)
            return bytes(reply)

    class Register(register_base):  # type: ignore[misc]
        def __init__(self, obis: str, exponent: int, unit: int) -> None:
            super().__init__(obis)
            self.exponent, self.unit_code = exponent, unit
            self.scaler = 10.0**exponent

        def getValue(self, settings: Any, e: Any) -> Any:
            if e.index == 2:
                return model.raw_value(self.logicalName)
            if e.index == 3:
                data = g.GXByteBuffer()
                data.setUInt8(g.DataType.STRUCTURE)
                data.setUInt8(2)
                g.GXCommon.setData(settings, data, g.DataType.INT8, self.exponent)
                g.GXCommon.setData(settings, data, g.DataType.ENUM, self.unit_code)
                return data.array()
            return super().getValue(settings, e)

    class Server(server_base):  # type: ignore[misc]
        def __init__(self) -> None:
            interface = g.InterfaceType.HDLC if hdlc else g.InterfaceType.WRAPPER
            super().__init__(True, interface)
            for obis, (exponent, unit, name) in (model.registers or DEFAULT_REGISTERS).items():
                reg = Register(obis, exponent, unit)
                dtype = g.DataType.UINT64 if name.startswith("energy") else g.DataType.INT32
                reg.setDataType(2, dtype)
                self.items.append(reg)
            # GXDLMSLNCommandHandler calls settings.setConnected after HLS pass 3; GXDLMSSettings lacks it.
            self.settings.setConnected = lambda value: setattr(self.settings, "connected", value)
            if model.logical_device_name is not None:
                ldn = g.GXDLMSData("0.0.42.0.0.255")
                ldn.value = model.logical_device_name
                ldn.setDataType(2, g.DataType.OCTET_STRING)
                self.items.append(ldn)
            if sec is not None:
                counter = FrameCounter(sec.frame_counter_obis)
                counter.setDataType(2, g.DataType.UINT32)
                self.items.append(counter)
                # GXDLMSSecureServer stores its GXCiphering as settings.ciphering; everything reads settings.cipher.
                cipher = self.settings.cipher = self.settings.ciphering
                cipher.systemTitle = sec.system_title
                cipher.blockCipherKey = sec.ek
                cipher.authenticationKey = sec.ak
                self.settings.gtx_on_counter = self._on_counter
            # initialize() would append the whole collection as one "object" to a default association's
            # object list (TypeError): give it an association whose object list is already filled.
            association = Association()
            for reg in list(self.items):
                association.objectList.append(reg)
            self.items.append(association)
            association.objectList.append(association)
            self.initialize()

        # --- security (gurux enforces none of it) ---------------------------------------------------------
        def _on_counter(self, counter: int) -> None:
            assert sec is not None
            if counter < sec.next_client_counter:
                counter_error.append(counter)
                return
            sec.next_client_counter = counter + 1
            self.settings.cipher.invocationCounter = max(self.settings.cipher.invocationCounter, sec.server_counter)

        def _public(self) -> bool:
            return bool(self.settings.clientAddress == 16)

        def handleAarqRequest(self, data: Any, connectionInfo: Any) -> None:
            if sec is None:
                super().handleAarqRequest(data, connectionInfo)
                return
            counter_error.clear()
            try:
                super().handleAarqRequest(data, connectionInfo)
            except ValueError:  # gurux: "Decrypt failed. Invalid tag." -- wrong EK/AK or system title
                sec.rejected += 1
                self._reject(13)
                return
            if counter_error:
                sec.rejected += 1
                self.settings.connected &= ~g.ConnectionState.DLMS
                self.replyData.clear()
                if hdlc:
                    self.replyData.set(b"\xe6\xe7\x00")
                # exception-response: service-not-allowed, invocation-counter-error, the counter expected
                self.replyData.set(b"\xd8\x01\x06" + sec.next_client_counter.to_bytes(4, "big"))
            sec.server_counter = max(sec.server_counter, self.settings.cipher.invocationCounter)

        def _reject(self, diagnostic: int) -> None:
            self.settings.connected &= ~g.ConnectionState.DLMS
            self.replyData.clear()
            if hdlc:
                self.replyData.set(b"\xe6\xe7\x00")
            body = (b"\xa1\x09\x06\x07" + bytes.fromhex("60857405080101") + b"\xa2\x03\x02\x01\x01"
                    + b"\xa3\x05\xa1\x03\x02\x01" + bytes([diagnostic]))
            self.replyData.set(b"\x61" + bytes([len(body)]) + body)

        # --- addressing and authentication -------------------------------------------------------------
        def isTarget(self, serverAddress: int, clientAddress: int) -> bool:
            if not model.online:
                return False
            if hdlc:
                # gurux packs (logical, physical) as logical << 7 | physical (2-byte) or << 14 (4-byte form).
                if serverAddress not in {(logical << 14) | physical, (logical << 7) | physical}:
                    return False
            elif serverAddress != logical:
                return False
            return clientAddress in (1, 16, 17)

        def onValidateAuthentication(self, authentication: Any, password: Any) -> Any:
            diag = g.SourceDiagnostic
            if sec is not None and not self._public():
                return self._validate_secure(authentication, password)
            if authentication == g.Authentication.NONE:
                return diag.NONE  # the public client may always read
            if authentication == g.Authentication.LOW and model.password is not None:
                return diag.NONE if bytes(password or b"") == model.password else diag.AUTHENTICATION_FAILURE
            return diag.AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED

        def _validate_secure(self, authentication: Any, password: Any) -> Any:
            assert sec is not None
            diag = g.SourceDiagnostic
            wanted = {"none": g.Authentication.NONE, "low": g.Authentication.LOW,
                      "high-gmac": g.Authentication.HIGH_GMAC}[sec.authentication]
            if authentication != wanted:
                return diag.AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED
            if int(self.settings.cipher.security) != sec.policy:
                return diag.AUTHENTICATION_REQUIRED
            if wanted == g.Authentication.LOW and bytes(password or b"") != model.password:
                return diag.AUTHENTICATION_FAILURE
            return diag.NONE

        def onGetAttributeAccess(self, arg: Any) -> Any:
            if sec is not None and self._public():
                # The public client reads the frame counter only (as real meters allow).
                name = arg.target.logicalName
                public = name in (sec.frame_counter_obis, "0.0.42.0.0.255")
                return g.AccessMode.READ if public else g.AccessMode.NO_ACCESS
            return g.AccessMode.READ

        def onGetMethodAccess(self, arg: Any) -> Any:
            if sec is not None and arg.index == 1 and arg.target.logicalName == "0.0.40.0.0.255":
                return g.MethodAccessMode.ACCESS
            return g.MethodAccessMode.NO_ACCESS

        # --- gurux 1.0.203 bugs ------------------------------------------------------------------------
        def notifyRead(self) -> None:
            return

        def notifyConnected(self, connectionInfo: Any) -> None:
            return

        def onPostRead(self, args: Any = None) -> None:
            return

        def handleSnrmRequest(self, data: Any) -> None:
            s = self.settings.hdlc
            s.maxInfoRX = s.maxInfoTX = max_info
            s.windowSizeRX = s.windowSizeTX = 1
            g.GXDLMS.parseSnrmUaResponse(data, s)
            s.maxInfoRX = min(s.maxInfoRX, max_info)
            s.maxInfoTX = min(s.maxInfoTX, max_info)
            self.reset(True)
            info = g.HDLCInfo
            self.replyData.setUInt8(0x81)
            self.replyData.setUInt8(0x80)
            self.replyData.setUInt8(0)
            self.replyData.setUInt8(info.MAX_INFO_TX)
            g.GXDLMS.appendHdlcParameter(self.replyData, s.maxInfoTX)
            self.replyData.setUInt8(info.MAX_INFO_RX)
            g.GXDLMS.appendHdlcParameter(self.replyData, s.maxInfoRX)
            self.replyData.setUInt8(info.WINDOW_SIZE_TX)
            self.replyData.setUInt8(4)
            self.replyData.setUInt32(1)
            self.replyData.setUInt8(info.WINDOW_SIZE_RX)
            self.replyData.setUInt8(4)
            self.replyData.setUInt32(1)
            # gurux writes this length with swapped (value, index) arguments; setUInt8 is (value, index).
            self.replyData.setUInt8(len(self.replyData) - 3, 2)
            self.settings.connected = g.ConnectionState.HDLC

        def handleReleaseRequest(self, data: Any) -> None:
            # gurux's version drops the LLC header on HDLC and mis-sizes the RLRE.
            if hdlc:
                self.replyData.set(b"\xe6\xe7\x00")
            self.replyData.set(b"\x63\x03\x80\x01\x00")  # RLRE, reason: normal

        # --- unused hooks (abstract in gurux) -------------------------------------------------------------
        def onPreGet(self, args: Any) -> None:
            return

        def onPostGet(self, args: Any) -> None:
            return

        def onFindObject(self, objectType: Any, sn: Any, ln: Any) -> None:
            return

        def onPreRead(self, args: Any) -> None:
            return

        def onPreWrite(self, args: Any) -> None:
            return

        def onPostWrite(self, args: Any) -> None:
            return

        def onConnected(self, connectionInfo: Any) -> None:
            return

        def onInvalidConnection(self, connectionInfo: Any) -> None:
            return

        def onDisconnected(self, connectionInfo: Any) -> None:
            return

        def onPreAction(self, args: Any) -> None:
            return

        def onPostAction(self, args: Any) -> None:
            return

    return Server()


def _reply_class() -> Any:
    g = _gurux()

    reply_base: Any = g.GXServerReply

    class Reply(reply_base):  # type: ignore[misc]
        """GXServerReply with the accessors GXDLMSServer calls but 1.0.203 does not define."""

        def setReply(self, value: Any) -> None:
            self.reply = value

        def getReply(self) -> Any:
            return self.reply

        def getConnectionInfo(self) -> Any:
            return self.connectionInfo

        def setCount(self, value: int) -> None:
            self.count = value

    return Reply


def serve_bytes(server: Any, data: bytes) -> bytes:
    """Feed received bytes to a gurux server; return what it wants to send (possibly nothing)."""
    reply = _reply_class()(data)
    server.handleRequest(reply)
    out = reply.reply
    return bytes(out) if out else b""


class DlmsTcpSimulator:
    """The meter on the IEC 62056-47 TCP wrapper: one gurux server per client connection."""

    def __init__(self, model: DlmsMeterModel, *, port: int, host: str = "127.0.0.1", logical: int = 1) -> None:
        self.model, self.host, self.port, self.logical = model, host, port, logical
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server = build_server(self.model, hdlc=False, logical=self.logical)
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while data := await reader.read(4096):
                out = serve_bytes(server, data)
                if out:
                    writer.write(out)
                    await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def __aenter__(self) -> DlmsTcpSimulator:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()


class DlmsHdlcSimulator:
    """The meter on an HDLC serial line (a device path such as one end of a :class:`PtyPair`)."""

    def __init__(self, model: DlmsMeterModel, *, device: str, logical: int = 1, physical: int = 17,
                 max_info: int = 128) -> None:
        self.model, self.device = model, device
        self.logical, self.physical, self.max_info = logical, physical, max_info
        self._fd: int | None = None
        self._server: Any = None
        self.on_bytes: Callable[[bytes], None] | None = None

    def _readable(self) -> None:
        assert self._fd is not None
        try:
            data = os.read(self._fd, 4096)
        except (BlockingIOError, OSError):
            return
        if self.on_bytes is not None:
            self.on_bytes(data)
        out = serve_bytes(self._server, data)
        if out:
            os.write(self._fd, out)

    async def __aenter__(self) -> DlmsHdlcSimulator:
        self._server = build_server(
            self.model, hdlc=True, logical=self.logical, physical=self.physical, max_info=self.max_info
        )
        self._fd = os.open(self.device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self._fd)
        asyncio.get_running_loop().add_reader(self._fd, self._readable)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            asyncio.get_running_loop().remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None


def _axdr_register(obis: str, value: int, exponent: int, unit: int, energy: bool) -> bytes:
    """One ``octet-string(OBIS), value, structure{scaler, unit}`` triple, encoded here by hand (not by our codec)."""
    parts = bytes(int(x) for x in obis.split("."))
    raw = (b"\x15" + value.to_bytes(8, "big")) if energy else (b"\x05" + value.to_bytes(4, "big", signed=True))
    return b"\x09\x06" + parts + raw + b"\x02\x02\x0f" + exponent.to_bytes(1, "big", signed=True) + bytes([0x16, unit])


def push_apdu(model: DlmsMeterModel, *, date_time: bytes | None = None) -> bytes:
    """A DATA-NOTIFICATION with every register of ``model``, general-glo-ciphered by gurux with the model's keys
    and the meter's next invocation counter (plain when the model has no security)."""
    regs = model.registers or DEFAULT_REGISTERS
    body = b"\x02" + bytes([len(regs) * 3]) + b"".join(
        _axdr_register(obis, model.raw_value(obis), exponent, unit, name.startswith("energy"))
        for obis, (exponent, unit, name) in regs.items()
    )
    model.pushes += 1
    stamp = b"\x00" if date_time is None else b"\x0c" + date_time
    apdu = b"\x0f" + model.pushes.to_bytes(4, "big") + stamp + body
    sec = model.security
    if sec is None:
        return apdu
    from gurux_dlms.AesGcmParameter import AesGcmParameter  # noqa: PLC0415 - lazy, GPL test-only
    from gurux_dlms.enums import Security  # noqa: PLC0415
    from gurux_dlms.GXDLMSChippering import GXDLMSChippering  # noqa: PLC0415

    p = AesGcmParameter(0xDB, sec.system_title, sec.ek, sec.ak)
    p.security = Security(sec.policy)
    sec.server_counter += 1
    p.invocationCounter = sec.server_counter
    return bytes(GXDLMSChippering.encryptAesGcm(p, apdu))


class DlmsPushSender:
    """A meter's customer interface pushing ciphered DATA-NOTIFICATIONs over the TCP wrapper every ``period_s``
    (0 = only when :meth:`push` is called). Reconnects when the gateway is away."""

    def __init__(self, model: DlmsMeterModel, *, host: str, port: int, period_s: float = 0.0) -> None:
        self.model, self.host, self.port, self.period_s = model, host, port, period_s
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self.sent: list[bytes] = []

    async def _connect(self) -> asyncio.StreamWriter:
        if self._writer is None or self._writer.is_closing():
            _, self._writer = await asyncio.open_connection(self.host, self.port)
        return self._writer

    async def send(self, apdu: bytes) -> None:
        """Send one APDU in a wrapper frame (client wPort 1 -> 1, as push setups commonly use)."""
        writer = await self._connect()
        writer.write(b"\x00\x01\x00\x01\x00\x01" + len(apdu).to_bytes(2, "big") + apdu)
        await writer.drain()

    async def push(self) -> bytes:
        if not self.model.online:
            return b""
        apdu = push_apdu(self.model)
        await self.send(apdu)
        self.sent.append(apdu)
        return apdu

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(OSError):
                await self.push()
            await asyncio.sleep(self.period_s)

    async def __aenter__(self) -> DlmsPushSender:
        if self.period_s > 0:
            self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
