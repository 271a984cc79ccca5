"""A throwaway certificate authority for tests and the demo, made at run time with ``cryptography`` (no private key
is ever committed): a CA, a server certificate for 127.0.0.1/localhost signed by it, and client certificates when
asked for."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    #: client common name -> (certificate, key), for the ``clients`` asked of :func:`make_pki`
    clients: Mapping[str, tuple[Path, Path]] = field(default_factory=dict)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey,
          *, ca: bool, hosts: tuple[str, ...] = ()) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if hosts:
        names: list[x509.GeneralName] = []
        for h in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                names.append(x509.DNSName(h))
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.touch(mode=0o600)
    path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def make_pki(directory: Path, *, hosts: tuple[str, ...] = ("127.0.0.1", "localhost"), name: str = "test",
             clients: tuple[str, ...] = ()) -> Pki:
    """Write ``ca.pem``, ``server.pem`` and ``server.key`` (0600) into ``directory``, and for each common name in
    ``clients`` a client certificate ``<name>.pem`` and its key ``<name>.key`` (0600)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = f"GridTokenX {name} CA"
    ca = _cert(ca_name, ca_key, ca_name, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    server = _cert(hosts[0], key, ca_name, ca_key, ca=False, hosts=hosts)
    client_paths: dict[str, tuple[Path, Path]] = {}
    for cn in clients:
        client_key = ec.generate_private_key(ec.SECP256R1())
        cert_path, key_path = client_paths[cn] = directory / f"{cn}.pem", directory / f"{cn}.key"
        cert_path.write_bytes(_pem(_cert(cn, client_key, ca_name, ca_key, ca=False)))
        _write_key(key_path, client_key)
    paths = Pki(directory / "ca.pem", directory / "server.pem", directory / "server.key", client_paths)
    paths.ca.write_bytes(_pem(ca))
    paths.server_cert.write_bytes(_pem(server))
    _write_key(paths.server_key, key)
    return paths
