"""The mail checks' resolver against a real DNS server on loopback: time bounds and TTL cache."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from inboxhub.lib.mail.dns import DNSTempError, Resolver, get_resolver, parse_nameserver, time_budget
from tests.dnsserver import DNSServer, dns_server  # noqa: F401 - the fixture


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.53", ("192.0.2.53", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("[2001:db8::53]", ("2001:db8::53", 53)),
    ],
)
def test_nameservers_are_read_with_an_optional_port(text, expected):
    assert parse_nameserver(text) == expected


@pytest.mark.parametrize("text", ["dns.example", "127.0.0.1:0", "127.0.0.1:dns", "[::1]5353"])
def test_a_bad_nameserver_stops_start_up_with_its_value(text):
    with pytest.raises(ImproperlyConfigured, match="DNS_NAMESERVERS"):
        parse_nameserver(text)


def test_an_answer_is_cached_until_its_ttl_passes(dns_server):  # noqa: F811
    dns_server.add_txt("acme.example", "v=spf1 -all", ttl=60)
    clock = Clock()
    resolver = Resolver([dns_server.address], clock=clock)

    assert resolver.txt("acme.example") == [b"v=spf1 -all"]
    clock.now += 59
    assert resolver.txt("ACME.example.") == [b"v=spf1 -all"]
    assert dns_server.count("acme.example") == 1

    clock.now += 2
    resolver.txt("acme.example")
    assert dns_server.count("acme.example") == 2


def test_a_missing_name_is_cached_for_the_soa_minimum(dns_server):  # noqa: F811
    dns_server.negative_ttl = 30
    clock = Clock()
    resolver = Resolver([dns_server.address], clock=clock)

    assert resolver.query("nothing.acme.example", "TXT") == ()
    clock.now += 29
    assert resolver.query("nothing.acme.example", "TXT") == ()
    assert dns_server.count("nothing.acme.example") == 1

    clock.now += 2
    resolver.query("nothing.acme.example", "TXT")
    assert dns_server.count("nothing.acme.example") == 2


def test_a_name_without_the_asked_type_is_cached_as_empty(dns_server):  # noqa: F811
    dns_server.add("acme.example", "A", "192.0.2.1")
    resolver = Resolver([dns_server.address])

    assert resolver.query("acme.example", "MX") == ()
    assert resolver.query("acme.example", "MX") == ()
    assert dns_server.count("acme.example", "MX") == 1


def test_a_cname_is_followed(dns_server):  # noqa: F811
    dns_server.add("acme.example", "A", "192.0.2.1")
    dns_server.add("www.acme.example", "CNAME", "acme.example.")

    records = Resolver([dns_server.address]).query("www.acme.example", "A")

    assert [record.address for record in records] == ["192.0.2.1"]


def test_a_long_txt_record_is_joined_from_its_strings(dns_server):  # noqa: F811
    dns_server.add_txt("key._domainkey.acme.example", "p=" + "A" * 600)

    assert Resolver([dns_server.address]).txt("key._domainkey.acme.example") == [b"p=" + b"A" * 600]


def test_a_dead_server_raises_temperror_after_the_query_timeout_and_nothing_is_cached(dns_server):  # noqa: F811
    dns_server.add_txt("acme.example", "v=spf1 -all")
    resolver = Resolver([dns_server.address], query_timeout=0.3)
    dns_server.answering = False

    with pytest.raises(DNSTempError):
        resolver.txt("acme.example")

    dns_server.answering = True
    assert resolver.txt("acme.example") == [b"v=spf1 -all"]


def test_a_spent_budget_refuses_new_lookups_but_serves_cached_ones(dns_server):  # noqa: F811
    dns_server.add_txt("acme.example", "v=spf1 -all")
    resolver = Resolver([dns_server.address])
    resolver.txt("acme.example")

    with time_budget(0):
        assert resolver.txt("acme.example") == [b"v=spf1 -all"]
        with pytest.raises(DNSTempError, match="budget"):
            resolver.txt("other.example")

    assert dns_server.count("other.example") == 0


def test_the_budget_bounds_many_lookups_to_a_dead_server(dns_server):  # noqa: F811
    resolver = Resolver([dns_server.address], query_timeout=0.5)
    dns_server.answering = False

    with time_budget(1.0):
        for name in ["a.example", "b.example", "c.example", "d.example", "e.example"]:
            with pytest.raises(DNSTempError):
                resolver.txt(name)

    assert dns_server.count("e.example") == 0


def test_the_shared_resolver_follows_the_dns_nameservers_setting(settings):
    with DNSServer() as first, DNSServer() as second:
        first.add_txt("acme.example", "first")
        second.add_txt("acme.example", "second")

        settings.DNS_NAMESERVERS = [first.address]
        assert get_resolver().txt("acme.example") == [b"first"]
        settings.DNS_NAMESERVERS = [second.address]
        assert get_resolver().txt("acme.example") == [b"second"]
