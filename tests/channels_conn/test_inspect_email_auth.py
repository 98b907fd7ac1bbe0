"""`manage.py inspect_email` reports what it can check of the sender offline (G7, G8)."""

import base64
import io
import json

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.management import call_command

from tests.dnsserver import dns_server  # noqa: F401 - the fixture

G7_KEYS = {"is_forwarded", "original_sender", "subject", "cc", "text", "forwarded_by"}
AUTHSERV_ID = "mx.inboxhub.example"


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def dns(dns_server, settings, private_key):  # noqa: F811 - the imported fixture
    """acme.example publishes a DKIM key and DMARC p=reject."""
    settings.DNS_NAMESERVERS = [dns_server.address]
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    dns_server.add_txt("sel._domainkey.acme.example", f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}")
    dns_server.add_txt("_dmarc.acme.example", "v=DMARC1; p=reject")
    return dns_server


def message(*, headers: str = "", body: str = "Please pay invoice 1001.\r\n") -> bytes:
    return (
        f"{headers}From: Ada <ada@acme.example>\r\nTo: help@alpha.in.inboxhub.example\r\n"
        "Subject: Invoice\r\nDate: Mon, 03 Mar 2025 10:00:00 +0000\r\n"
        f"Message-ID: <inv1001@acme.example>\r\n\r\n{body}"
    ).encode()


def signed(raw: bytes, private_key, *, domain: str = "acme.example") -> bytes:
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return dkim.sign(raw, b"sel", domain.encode(), pem, include_headers=[b"from", b"subject", b"date"]) + raw


def inspect(raw: bytes, *args: str) -> dict:
    out = io.StringIO()
    call_command("inspect_email", "-", *args, stdin=io.BytesIO(raw), stdout=out)
    return json.loads(out.getvalue())


def test_a_signed_message_is_reported_authenticated_beside_the_six_g7_keys(dns, private_key):
    result = inspect(signed(message(), private_key))

    assert set(result) == G7_KEYS | {"authentication"}
    assert result["subject"] == "Invoice"
    auth = result["authentication"]
    assert auth["authenticated"] is True
    assert auth["domain"] == "acme.example"
    assert auth["method"] == "dkim"
    assert auth["reason"] == "dkim=pass (acme.example, aligned)"
    assert auth["label"] == "authenticated as acme.example"
    assert "spf" not in auth["results"]  # a file has no client IP to check


def test_a_body_changed_after_signing_is_reported_as_a_dkim_failure_and_possible_spoofing(dns, private_key):
    raw = signed(message(), private_key).replace(b"1001", b"6666")

    auth = inspect(raw)["authentication"]

    assert auth["authenticated"] is False
    assert auth["results"]["dkim"][0]["result"] == "fail"
    assert auth["spoofing_suspected"] is True
    assert auth["reason"] == "dmarc=fail (p=reject)"


def test_an_unsigned_message_is_not_verified(dns):
    auth = inspect(message())["authentication"]

    assert auth["authenticated"] is False
    assert auth["results"]["dkim"] == []


def test_the_relays_header_counts_with_trusted_authserv_id(dns):
    header = f"Authentication-Results: {AUTHSERV_ID}; dmarc=pass header.from=acme.example\r\n"

    auth = inspect(message(headers=header), "--trusted-authserv-id", AUTHSERV_ID)["authentication"]

    assert auth["authenticated"] is True
    assert auth["method"] == "trusted_relay"
    assert auth["reason"] == f"dmarc=pass ({AUTHSERV_ID})"


def test_without_the_option_an_authentication_results_header_is_ignored(dns):
    header = f"Authentication-Results: {AUTHSERV_ID}; dmarc=pass header.from=acme.example\r\n"

    auth = inspect(message(headers=header))["authentication"]

    assert auth["authenticated"] is False
    assert "authentication_results" not in auth["results"]


def test_a_header_of_another_authserv_id_is_ignored(dns):
    header = "Authentication-Results: forged.example; dmarc=pass header.from=acme.example\r\n"

    auth = inspect(message(headers=header), "--trusted-authserv-id", AUTHSERV_ID)["authentication"]

    assert auth["authenticated"] is False
    assert "authentication_results" not in auth["results"]


def test_a_dead_dns_is_reported_as_temperror(dns, private_key):
    dns.answering = False

    auth = inspect(signed(message(), private_key))["authentication"]

    assert auth["authenticated"] is False
    assert auth["reason"] == "temperror"
