"""HTTPS: `vpcep serve --tls-cert --tls-key` serves the API over TLS, and the official SDK
verifies it against a CA generated here; a client that does not trust that CA is refused."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from huaweicloudsdkcore.exceptions import exceptions as sdk_exc
from huaweicloudsdkvpc.v2 import ListVpcsRequest
from huaweicloudsdkvpcep.v1 import ListEndpointServiceRequest

from vpcep_support import create_service


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca_and_cert(directory: Path) -> tuple[str, str, str]:
    """A fresh CA and a certificate for 127.0.0.1 it signed: (ca, cert, key) PEM file paths."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("vpcep compat CA"))
          .issuer_name(_name("vpcep compat CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1"))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = (directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return tuple(str(p) for p in paths)


@pytest.fixture
def tls_server(start_server, tmp_path):
    ca, cert, key = make_ca_and_cert(tmp_path)
    return start_server("tls", tls=(cert, key), ca_cert=ca)


def test_sdk_verifies_an_https_server_against_a_generated_ca(tls_server):
    assert tls_server.url.startswith("https://")
    client = tls_server.client("owner")
    svc = create_service(client, approval_enabled=False)
    listed = client.list_endpoint_service(ListEndpointServiceRequest(limit=100))
    assert svc.id in [s.id for s in listed.endpoint_services]
    vpcs = tls_server.vpc("owner").list_vpcs(ListVpcsRequest())
    assert len(vpcs.vpcs) >= 1


def test_sdk_without_the_ca_is_refused_by_certificate_verification(tls_server):
    tls_server.ca_cert = None  # clients built from here on trust only the default bundle
    client = tls_server.client("owner")
    with pytest.raises(sdk_exc.SdkException) as refused:
        client.list_endpoint_service(ListEndpointServiceRequest(limit=1))
    assert "certificate" in str(refused.value).lower() or "ssl" in str(refused.value).lower()
