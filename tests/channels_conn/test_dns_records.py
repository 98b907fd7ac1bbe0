"""One reading of DMARC and SPF records for incoming mail (G8) and the custom-from check (C4).

Cases from the recorded library trial (bench/DMARC-TRIAL.md) where the two
paths read the same DNS differently, against a real DNS server on loopback.
"""

import pytest

from inboxhub.lib.mail.deliverability import check_domain
from inboxhub.lib.mail.dnsrecords import dmarc_records, spf_record
from tests.channels_conn.test_authentication import dns, evaluate, key, message, signed  # noqa: F401
from tests.dnsserver import dns_server  # noqa: F401 - the fixture


def spoofing_verdict(dns_server, key, record: str):  # noqa: F811 - the imported fixture's name
    dns_server.remove("_dmarc.acme.example")
    dns_server.add_txt("_dmarc.acme.example", record)
    return evaluate(signed(message(), key, domain="other.example"))


@pytest.mark.parametrize(
    "record", ["V=DMARC1; p=reject", "v = DMARC1; p = reject", "  v=dmarc1;p=reject"], ids=repr
)
def test_a_dmarc_record_in_any_case_or_spacing_applies_its_policy_to_incoming_mail(dns, key, record):  # noqa: F811
    verdict = spoofing_verdict(dns, key, record)
    assert (verdict.reason, verdict.spoofing_suspected) == ("dmarc=fail (p=reject)", True)


@pytest.mark.parametrize("record", ["V=DMARC1; p=reject", "v = DMARC1; p = reject"], ids=repr)
def test_the_custom_from_check_reads_the_same_record_as_incoming_mail(dns, record):  # noqa: F811
    dns.add("acme.example", "MX", "10 mx.acme.example.")
    dns.remove("_dmarc.acme.example")
    dns.add_txt("_dmarc.acme.example", record)
    report = check_domain("acme.example")
    assert (report.dmarc, report.dmarc_policy) == (record, "reject")


def test_two_dmarc_records_count_as_none_for_incoming_mail_and_for_the_check(dns, key):  # noqa: F811
    dns.add("acme.example", "MX", "10 mx.acme.example.")
    dns.add_txt("_dmarc.acme.example", "v=DMARC1; p=reject")  # beside the fixture's p=none
    dns.add_txt("_dmarc.example", "v=DMARC1; p=reject")  # never consulted: discovery stops (6.6.3)
    verdict = evaluate(signed(message(), key, domain="other.example"))
    report = check_domain("acme.example")
    assert verdict.spoofing_suspected is False and "dmarc" not in verdict.reason
    assert (report.dmarc, report.dmarc_policy, report.dmarc_warning) == ("", "", "")


def test_two_spf_records_are_shown_as_none_whichever_dns_lists_first(dns):  # noqa: F811
    dns.add("acme.example", "MX", "10 mx.acme.example.")
    dns.add_txt("acme.example", "v=spf1 include:_spf.mail.localhost -all")  # beside the fixture's own
    assert check_domain("acme.example").spf == ""


def test_record_reading_ignores_what_only_looks_like_a_record():
    texts = [b"v=DMARC10; p=reject", b"google-site-verification=x", b"v=spf10 -all", b"spf1 -all"]
    assert dmarc_records(texts) == [] and spf_record(texts) == ""
    assert dmarc_records([b"v=DMARC1"]) == ["v=DMARC1"]
    assert spf_record([b"V=SPF1 -all"]) == "V=SPF1 -all"
