"""Sender authentication (G8) against a real DNS server on loopback, with keys made here."""

import ipaddress
import json
from email.utils import make_msgid

import dkim
import pytest

from inboxhub.lib.mail.authentication import Method, evaluate_offline, evaluate_sender
from inboxhub.lib.mail.dns import Resolver
from tests.dkimkeys import Key, generate_dkim_key
from tests.dnsserver import DNSServer, dns_server  # noqa: F401 - the fixture

ALLOWED_IP = "192.0.2.10"  # in acme.example's SPF record
STRANGER_IP = "203.0.113.66"  # in nobody's
RELAY_IP = "198.51.100.25"
AUTHSERV_ID = "mx.inboxhub.example"


@pytest.fixture(scope="module")
def key() -> Key:
    return generate_dkim_key()


@pytest.fixture
def dns(dns_server, settings, key) -> DNSServer:  # noqa: F811
    """acme.example publishes SPF, a DKIM key and DMARC p=none; other.example a key of its own."""
    settings.DNS_NAMESERVERS = [dns_server.address]
    settings.TRUSTED_NETWORKS = []
    settings.TRUSTED_RELAYS = []
    settings.TRUSTED_AUTHSERV_ID = ""
    dns_server.add_txt("acme.example", f"v=spf1 ip4:{ALLOWED_IP} -all")
    dns_server.add_txt("sel._domainkey.acme.example", key.public_record)
    dns_server.add_txt("_dmarc.acme.example", "v=DMARC1; p=none")
    dns_server.add_txt("sel._domainkey.other.example", key.public_record)
    dns_server.add_txt("sel._domainkey.mail.acme.example", key.public_record)
    return dns_server


def message(
    *, sender: str = "Ada <ada@acme.example>", body: str = "Hello from Ada.\n", headers: str = ""
) -> bytes:
    return (
        f"{headers}From: {sender}\r\nTo: help@alpha.in.inboxhub.example\r\nSubject: Invoice\r\n"
        f"Date: Mon, 03 Mar 2025 10:00:00 +0000\r\nMessage-ID: {make_msgid(domain='acme.example')}\r\n"
        f"\r\n{body}"
    ).encode()


def results_header(authserv_id: str, results: str) -> str:
    return f"Authentication-Results: {authserv_id}; {results}\r\n"


def signed(raw: bytes, key: Key, *, domain: str = "acme.example") -> bytes:
    signature = dkim.sign(
        raw, b"sel", domain.encode(), key.private_pem, include_headers=[b"from", b"to", b"subject", b"date"]
    )
    return signature + raw


def evaluate(raw: bytes, *, peer_ip: str = STRANGER_IP, mail_from: str = "ada@acme.example", **kwargs):
    return evaluate_sender(
        raw=raw, peer_ip=peer_ip, helo="mail.sender.example", mail_from=mail_from, **kwargs
    )


def test_an_aligned_dkim_signature_authenticates_the_from_domain(dns, key):
    verdict = evaluate(signed(message(), key))

    assert verdict.authenticated is True
    assert verdict.domain == "acme.example"
    assert verdict.method == Method.DKIM
    assert verdict.reason == "dkim=pass (acme.example, aligned)"
    assert verdict.label == "authenticated as acme.example"
    assert verdict.results["dmarc"]["result"] == "pass"


def test_unsigned_mail_from_an_ip_spf_does_not_permit_is_not_verified(dns):
    verdict = evaluate(message())

    assert verdict.authenticated is False
    assert verdict.domain == ""
    assert verdict.reason == "spf=fail"
    assert verdict.label == "not verified: spf=fail"
    assert verdict.results["spf"]["mailfrom"]["result"] == "fail"
    assert verdict.results["dkim"] == []


def test_unsigned_mail_from_an_ip_spf_permits_is_authenticated_by_spf(dns):
    verdict = evaluate(message(), peer_ip=ALLOWED_IP, mail_from="bounces@acme.example")

    assert verdict.authenticated is True
    assert verdict.method == Method.SPF
    assert verdict.reason == "spf=pass (acme.example, aligned)"


def test_a_body_changed_after_signing_fails_dkim(dns, key):
    raw = signed(message(body="Pay invoice 1001.\n"), key).replace(b"1001", b"6666")

    verdict = evaluate(raw)

    assert verdict.authenticated is False
    assert verdict.results["dkim"][0]["result"] == "fail"
    assert verdict.reason == "dkim=fail (body hash mismatch)"


def test_a_signature_of_another_domain_does_not_authenticate_the_from_domain(dns, key):
    verdict = evaluate(signed(message(), key, domain="other.example"), mail_from="")

    assert verdict.authenticated is False
    assert verdict.results["dkim"][0] == {
        "domain": "other.example",
        "selector": "sel",
        "result": "pass",
        "reason": "",
        "aligned": False,
    }
    assert verdict.reason == "dkim=pass (other.example, not aligned)"


def test_a_dmarc_reject_failure_is_kept_and_flagged_as_possible_spoofing(dns, key):
    dns.remove("_dmarc.acme.example")
    dns.add_txt("_dmarc.acme.example", "v=DMARC1; p=reject")

    verdict = evaluate(signed(message(), key, domain="other.example"))

    assert verdict.authenticated is False
    assert verdict.spoofing_suspected is True
    assert verdict.reason == "dmarc=fail (p=reject)"
    assert verdict.results["dmarc"]["result"] == "fail"


def test_a_subdomain_signature_aligns_under_relaxed_alignment(dns, key):
    verdict = evaluate(signed(message(), key, domain="mail.acme.example"))

    assert verdict.authenticated is True
    assert verdict.domain == "acme.example"
    assert verdict.reason == "dkim=pass (mail.acme.example, aligned)"


def test_a_subdomain_signature_does_not_align_under_strict_alignment(dns, key):
    dns.remove("_dmarc.acme.example")
    dns.add_txt("_dmarc.acme.example", "v=DMARC1; p=quarantine; adkim=s")

    verdict = evaluate(signed(message(), key, domain="mail.acme.example"))

    assert verdict.authenticated is False
    assert verdict.spoofing_suspected is True
    assert verdict.reason == "dmarc=fail (p=quarantine)"
    assert verdict.results["dkim"][0]["aligned"] is False


def test_a_subdomain_from_uses_the_organizational_domain_policy_and_its_sp(dns, key):
    dns.remove("_dmarc.acme.example")
    dns.add_txt("_dmarc.acme.example", "v=DMARC1; p=none; sp=reject")

    verdict = evaluate(message(sender="ada@billing.acme.example"), mail_from="")

    assert verdict.spoofing_suspected is True
    assert verdict.results["dmarc"]["record_domain"] == "acme.example"
    assert verdict.results["dmarc"]["policy"] == "reject"


def test_every_signature_is_checked_and_the_aligned_one_counts(dns, key):
    raw = signed(signed(message(), key, domain="acme.example"), key, domain="other.example")

    verdict = evaluate(raw)

    assert [s["domain"] for s in verdict.results["dkim"]] == ["other.example", "acme.example"]
    assert verdict.authenticated is True
    assert verdict.method == Method.DKIM


def test_a_forged_authentication_results_from_a_non_relay_is_ignored(dns, settings):
    settings.TRUSTED_RELAYS = [ipaddress.ip_network(RELAY_IP)]
    settings.TRUSTED_AUTHSERV_ID = AUTHSERV_ID
    forged = results_header(
        AUTHSERV_ID, "dkim=pass header.d=acme.example; dmarc=pass header.from=acme.example"
    )

    verdict = evaluate(message(headers=forged))

    assert verdict.authenticated is False
    assert verdict.reason == "spf=fail"
    assert "authentication_results" not in verdict.results


def test_the_relays_own_topmost_header_is_honoured_without_dns(dns, settings):
    settings.TRUSTED_RELAYS = [ipaddress.ip_network("198.51.100.0/24")]
    settings.TRUSTED_AUTHSERV_ID = AUTHSERV_ID
    header = (
        f"Authentication-Results: {AUTHSERV_ID};\r\n\tspf=pass smtp.mailfrom=ada@acme.example;\r\n"
        "\tdkim=pass header.d=acme.example header.s=sel;\r\n\tdmarc=pass header.from=acme.example\r\n"
    )

    verdict = evaluate(message(headers=header), peer_ip=RELAY_IP)

    assert verdict.authenticated is True
    assert verdict.method == Method.TRUSTED_RELAY
    assert verdict.domain == "acme.example"
    assert verdict.reason == f"dmarc=pass ({AUTHSERV_ID})"
    assert sum(dns.queries.values()) == 0


def test_a_relays_header_for_a_failing_dmarc_reject_is_flagged(dns, settings):
    settings.TRUSTED_RELAYS = [ipaddress.ip_network(RELAY_IP)]
    settings.TRUSTED_AUTHSERV_ID = AUTHSERV_ID
    header = results_header(AUTHSERV_ID, "dkim=none; dmarc=fail (p=reject dis=none) header.from=acme.example")

    verdict = evaluate(message(headers=header), peer_ip=RELAY_IP)

    assert verdict.authenticated is False
    assert verdict.spoofing_suspected is True
    assert verdict.reason == "dmarc=fail (p=reject)"


def test_a_header_of_another_authserv_id_is_ignored_even_from_the_relay(dns, settings):
    settings.TRUSTED_RELAYS = [ipaddress.ip_network(RELAY_IP)]
    settings.TRUSTED_AUTHSERV_ID = AUTHSERV_ID
    headers = (
        "Authentication-Results: mx.elsewhere.example; dmarc=pass header.from=acme.example\r\n"
        f"Authentication-Results: {AUTHSERV_ID}; dkim=none; dmarc=fail header.from=acme.example\r\n"
    )

    verdict = evaluate(message(headers=headers), peer_ip=RELAY_IP)

    assert verdict.authenticated is False
    assert verdict.reason == "dmarc=fail"
    assert verdict.results["authentication_results"]["authserv_id"] == AUTHSERV_ID


def test_only_the_topmost_header_of_the_relay_counts(dns, settings):
    settings.TRUSTED_RELAYS = [ipaddress.ip_network(RELAY_IP)]
    settings.TRUSTED_AUTHSERV_ID = AUTHSERV_ID
    headers = results_header(
        AUTHSERV_ID, "dkim=fail header.d=acme.example; dmarc=fail header.from=acme.example"
    ) + results_header(AUTHSERV_ID, "dkim=pass header.d=acme.example; dmarc=pass header.from=acme.example")

    verdict = evaluate(message(headers=headers), peer_ip=RELAY_IP)

    assert verdict.authenticated is False


def test_mail_from_the_relay_without_its_header_is_checked_by_dkim(dns, key, settings):
    settings.TRUSTED_RELAYS = [ipaddress.ip_network(RELAY_IP)]
    settings.TRUSTED_AUTHSERV_ID = AUTHSERV_ID

    verdict = evaluate(signed(message(), key), peer_ip=RELAY_IP)

    assert verdict.method == Method.DKIM
    assert "spf" not in verdict.results


def test_a_client_on_a_trusted_network_is_authenticated_without_any_dns_lookup(dns, settings):
    settings.TRUSTED_NETWORKS = [ipaddress.ip_network("10.0.0.0/8")]

    verdict = evaluate(message(), peer_ip="10.1.2.3")

    assert verdict.authenticated is True
    assert verdict.method == Method.TRUSTED_NETWORK
    assert verdict.domain == "acme.example"
    assert verdict.reason == "trusted network 10.0.0.0/8"
    assert sum(dns.queries.values()) == 0


def test_an_ipv4_client_seen_through_a_dual_stack_socket_matches_its_network(dns, settings):
    settings.TRUSTED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]

    verdict = evaluate(message(), peer_ip="::ffff:127.0.0.1")

    assert verdict.method == Method.TRUSTED_NETWORK


def test_a_from_with_two_addresses_is_never_authenticated(dns, key):
    raw = signed(message(sender="ada@acme.example, eve@evil.example"), key)

    verdict = evaluate(raw)

    assert verdict.authenticated is False
    assert verdict.reason == "no single From address"


def test_a_dead_dns_gives_temperror_within_the_time_budget(dns, key):
    dns.answering = False

    verdict = evaluate(signed(message(), key))

    assert verdict.authenticated is False
    assert verdict.reason == "temperror"
    assert verdict.results["dkim"][0]["result"] == "temperror"


def test_many_messages_from_one_domain_make_one_lookup_per_name(dns, key):
    for _ in range(5):
        assert evaluate(signed(message(), key), peer_ip=ALLOWED_IP).authenticated

    assert dns.count("sel._domainkey.acme.example") == 1
    assert dns.count("_dmarc.acme.example") == 1
    assert dns.count("acme.example", "TXT") == 1
    assert dns.count("mail.sender.example", "TXT") == 1  # HELO's SPF: none, cached negatively


def test_a_name_is_looked_up_again_once_its_ttl_has_passed(dns, key):
    now = [1000.0]
    resolver = Resolver([dns.address], clock=lambda: now[0])
    dns.remove("sel._domainkey.acme.example")
    dns.add_txt("sel._domainkey.acme.example", key.public_record, ttl=60)

    evaluate(signed(message(), key), resolver=resolver)
    now[0] += 59
    evaluate(signed(message(), key), resolver=resolver)
    assert dns.count("sel._domainkey.acme.example") == 1

    now[0] += 2
    evaluate(signed(message(), key), resolver=resolver)
    assert dns.count("sel._domainkey.acme.example") == 2


def test_offline_evaluation_reads_dkim_and_dmarc_as_json(dns, key):
    result = evaluate_offline(signed(message(), key))

    assert json.loads(json.dumps(result)) == result
    assert result["authenticated"] is True
    assert result["label"] == "authenticated as acme.example"
    assert result["results"]["dkim"][0]["result"] == "pass"
    assert "spf" not in result["results"]


def test_offline_evaluation_reads_the_header_of_the_given_authserv_id_only(dns):
    headers = (
        "Authentication-Results: mx.elsewhere.example; dmarc=fail header.from=acme.example\r\n"
        f"Authentication-Results: {AUTHSERV_ID}; dmarc=pass header.from=acme.example\r\n"
    )

    trusted = evaluate_offline(message(headers=headers), trusted_authserv_id=AUTHSERV_ID)
    untrusted = evaluate_offline(message(headers=headers))

    assert trusted["method"] == "trusted_relay"
    assert trusted["authenticated"] is True
    assert untrusted["authenticated"] is False
    assert untrusted["reason"] == "dkim=none"
