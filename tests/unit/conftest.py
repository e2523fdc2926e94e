"""Fixtures the engine's wire tests share, sync (``test_engine_wire``) and async (``test_engine_aio_wire``):
scripted HTTP servers on 127.0.0.1, the observations of the calls, a self-signed certificate."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core import engine
from tests.unit.test_engine_wire import Script, Server


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    """``serve(script, tls=None)``: a started ``Server``, closed after the test."""
    servers: list[Server] = []

    def start(script: Script, *, tls: ssl.SSLContext | None = None) -> Server:
        servers.append(Server(script, tls=tls))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def observations() -> Iterator[list[engine.Observation]]:
    """Every call's observation."""
    seen: list[engine.Observation] = []
    engine.observers.append(seen.append)
    yield seen
    engine.observers.remove(seen.append)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file
