"""A recorded trial: our DMARC evaluation and domain check against `authheaders` and `checkdmarc`.

Not a test and not a dependency: the two libraries live in a scratch virtualenv only.

    python3 -m venv /tmp/dmarc-trial
    /tmp/dmarc-trial/bin/pip install -e . authheaders checkdmarc
    DJANGO_SETTINGS_MODULE=inboxhub.settings /tmp/dmarc-trial/bin/python bench/dmarc_trial.py [--runs 7]

It starts the loopback DNS server of `tests/dnsserver.py` with crafted zones and, case by
case, compares the DMARC outcome (result and policy) of `evaluate_sender` with that of
`authheaders.authenticate_message` (SPF, DKIM and DMARC), and the records `check_domain`
reads with `checkdmarc.spf.get_spf_record` / `checkdmarc.dmarc.get_dmarc_record`. Every
socket may only talk to 127.0.0.1: anything else raises. Results and timings are printed
as tables; the findings are written up in bench/DMARC-TRIAL.md.

authheaders runs twice: with the `dnsfunc` it accepts (a function returning the first TXT
string of a name, which is all that interface can carry) and "native", with dnspython's
default resolver (which it, dkimpy and pyspf use when no dnsfunc is given) pointed at the
loopback server. Timings are medians of `--runs` cold evaluations: no DNS cache on any side
(a fresh `Resolver` for ours, checkdmarc's cache cleared), the loopback server answering.
"""

import argparse
import ipaddress
import os
import re
import socket
import statistics
import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inboxhub.settings")

# --- nothing but loopback ------------------------------------------------------------

_real_sendto = socket.socket.sendto
_real_connect = socket.socket.connect


def _check_loopback(address: object) -> None:
    host = address[0] if isinstance(address, tuple) else address
    if (
        isinstance(host, str)
        and not host.startswith("/")
        and not ipaddress.ip_address(host.split("%")[0]).is_loopback
    ):
        raise RuntimeError(f"dmarc_trial talks to 127.0.0.1 only, not {host}")


def _guarded_sendto(self: socket.socket, data: bytes, *args: object) -> int:
    _check_loopback(args[-1])
    return _real_sendto(self, data, *args)


def _guarded_connect(self: socket.socket, address: object) -> None:
    _check_loopback(address)
    return _real_connect(self, address)


socket.socket.sendto = _guarded_sendto  # type: ignore[method-assign]
socket.socket.connect = _guarded_connect  # type: ignore[method-assign]

import django  # noqa: E402
import dkim  # noqa: E402
import dns.exception  # noqa: E402
import dns.nameserver  # noqa: E402
import dns.resolver  # noqa: E402
import spf  # noqa: E402

PYSPF_LOOKUP = spf.DNSLookup  # before inboxhub.lib.mail.authentication replaces it

django.setup()

try:
    import pytest  # noqa: F401 - tests/dnsserver.py only needs it for its fixture
except ImportError:
    sys.modules["pytest"] = types.SimpleNamespace(fixture=lambda function: function)  # type: ignore[assignment]

import authheaders  # noqa: E402
import checkdmarc.dmarc  # noqa: E402
import checkdmarc.spf  # noqa: E402
import checkdmarc.utils  # noqa: E402
from django.conf import settings  # noqa: E402

from inboxhub.lib.mail.authentication import evaluate_sender  # noqa: E402
from inboxhub.lib.mail.deliverability import check_domain  # noqa: E402
from inboxhub.lib.mail.dns import Resolver  # noqa: E402
from tests.dkimkeys import Key, generate_dkim_key  # noqa: E402
from tests.dnsserver import DNSServer  # noqa: E402

OURS_SPF_LOOKUP = spf.DNSLookup  # inboxhub's, through its Resolver

ALLOWED_IP = "192.0.2.10"  # in every SPF record below
STRANGER_IP = "203.0.113.66"  # in none
HELO = "mail.sender.com"
AUTHSERV_ID = "mx.inboxhub.example"
LOOKUP_TIMEOUT = 1.0  # seconds per lookup for the libraries, as ours (dns.QUERY_TIMEOUT)

SPF = f"v=spf1 ip4:{ALLOWED_IP} -all"
SIGNERS = [
    "relaxed.com",
    "mail.relaxed.com",
    "strict.com",
    "mail.strict.com",
    "other.com",
    "nodmarc.com",
    "orgsp.com",
    "example.co.uk",
    "other.co.uk",
    "upper.com",
    "mail.upper.com",
    "my-shop.com",
    "acme.example",
    "other.example",
]
DMARC = {
    "relaxed.com": ["v=DMARC1; p=reject"],
    "strict.com": ["v=DMARC1; p=reject; adkim=s; aspf=s"],
    "quarantine.com": ["v=DMARC1; p=quarantine"],
    "monitor.com": ["v=DMARC1; p=none"],
    "orgonly.com": ["v=DMARC1; p=reject"],
    "orgsp.com": ["v=DMARC1; p=reject; sp=none"],
    "example.co.uk": ["v=DMARC1; p=quarantine"],
    "nov.com": ["p=reject; adkim=r"],
    "tworec.com": ["v=DMARC1; p=reject", "v=DMARC1; p=none"],
    "upper.com": ["v=DMARC1; P=REJECT; ADKIM=S"],
    "upperv.com": ["V=DMARC1; p=reject"],
    "spaced.com": ["v = DMARC1; p = reject"],
    "norua.com": ["v=DMARC1; adkim=s"],
    "rua.com": ["v=DMARC1; rua=mailto:dmarc@rua.com"],
    "pct0.com": ["v=DMARC1; p=reject; pct=0"],
    "my-shop.com": ["v=DMARC1; p=reject"],
    "acme.example": ["v=DMARC1; p=reject"],
}
SPF_EXTRA = {  # domains whose SPF is the point (check_domain vs checkdmarc)
    "twospf.com": [SPF, "v=spf1 -all"],
    "upperspf.com": [f"V=SPF1 ip4:{ALLOWED_IP} -all"],
}


def build_zones(server: DNSServer, key: Key) -> None:
    domains = (
        set(SIGNERS) | set(DMARC) | {"quarantine.com", "monitor.com", "sub.orgonly.com", "sub.orgsp.com"}
    )
    domains |= {"mail.example.co.uk", "sub.nodmarc.com"}
    for domain in sorted(domains):
        server.add(domain, "MX", f"10 mx.{domain}.")
        server.add(f"mx.{domain}", "A", "192.0.2.25")
        server.add_txt(domain, SPF)
    for domain in SIGNERS:
        server.add_txt(f"sel._domainkey.{domain}", key.public_record)
    for domain, records in DMARC.items():
        for record in records:
            server.add_txt(f"_dmarc.{domain}", record)
    for domain, records in SPF_EXTRA.items():
        server.add(domain, "MX", f"10 mx.{domain}.")
        for record in records:
            server.add_txt(domain, record)


# --- cases -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    from_domain: str
    dkim_domain: str = ""  # "" for an unsigned message
    mail_from: str = ""  # envelope sender; "" for none
    ip: str = STRANGER_IP
    dns_down: bool = False
    note: str = ""


CASES = [
    Case("dkim aligned, adkim=r", "relaxed.com", dkim_domain="relaxed.com"),
    Case("dkim aligned, adkim=s", "strict.com", dkim_domain="strict.com"),
    Case("dkim of subdomain, adkim=r", "relaxed.com", dkim_domain="mail.relaxed.com"),
    Case("dkim of subdomain, adkim=s", "strict.com", dkim_domain="mail.strict.com"),
    Case("dkim of another domain", "relaxed.com", dkim_domain="other.com"),
    Case("spf pass aligned", "relaxed.com", mail_from="b@relaxed.com", ip=ALLOWED_IP),
    Case("spf pass unaligned", "relaxed.com", mail_from="b@other.com", ip=ALLOWED_IP),
    Case("spf pass subdomain, aspf=r", "relaxed.com", mail_from="b@mail.relaxed.com", ip=ALLOWED_IP),
    Case("spf pass subdomain, aspf=s", "strict.com", mail_from="b@mail.strict.com", ip=ALLOWED_IP),
    Case("spf fail, p=reject", "relaxed.com", mail_from="b@relaxed.com"),
    Case("no DMARC record", "nodmarc.com", dkim_domain="nodmarc.com"),
    Case("no DMARC record, subdomain", "sub.nodmarc.com", mail_from="b@sub.nodmarc.com"),
    Case("p=quarantine, unauthenticated", "quarantine.com", mail_from="b@quarantine.com"),
    Case("p=none, unauthenticated", "monitor.com", mail_from="b@monitor.com"),
    Case("org record only, no sp", "sub.orgonly.com", mail_from="b@sub.orgonly.com"),
    Case("org record only, sp=none", "sub.orgsp.com", mail_from="b@sub.orgsp.com"),
    Case("org record, sp=none, dkim of org", "sub.orgsp.com", dkim_domain="orgsp.com"),
    Case("co.uk: dkim of org, From subdomain", "mail.example.co.uk", dkim_domain="example.co.uk"),
    Case("co.uk: dkim of other.co.uk", "example.co.uk", dkim_domain="other.co.uk"),
    Case("record without v=", "nov.com", mail_from="b@nov.com"),
    Case("two DMARC records", "tworec.com", mail_from="b@tworec.com"),
    Case("uppercase tags P=REJECT ADKIM=S", "upper.com", dkim_domain="mail.upper.com"),
    Case("uppercase V=DMARC1", "upperv.com", mail_from="b@upperv.com"),
    Case("spaces: v = DMARC1; p = reject", "spaced.com", mail_from="b@spaced.com"),
    Case("no p=, no rua=", "norua.com", mail_from="b@norua.com"),
    Case("no p=, with rua=", "rua.com", mail_from="b@rua.com"),
    Case("p=reject; pct=0", "pct0.com", mail_from="b@pct0.com"),
    Case("hyphen in From domain", "my-shop.com", dkim_domain="my-shop.com"),
    Case("TLD not in PSL: dkim of other.example", "acme.example", dkim_domain="other.example"),
    Case("DNS down (temperror)", "relaxed.com", dkim_domain="relaxed.com", dns_down=True),
]

DOMAIN_CASES = [
    ("relaxed.com", False),
    ("strict.com", False),
    ("nodmarc.com", False),
    ("quarantine.com", False),
    ("sub.orgonly.com", False),
    ("sub.orgsp.com", False),
    ("mail.example.co.uk", False),
    ("nov.com", False),
    ("tworec.com", False),
    ("upper.com", False),
    ("upperv.com", False),
    ("spaced.com", False),
    ("norua.com", False),
    ("rua.com", False),
    ("my-shop.com", False),
    ("twospf.com", False),
    ("upperspf.com", False),
    ("relaxed.com", True),
]


def message(case: Case, key: Key) -> bytes:
    raw = (
        f"From: Ada <ada@{case.from_domain}>\r\nTo: help@alpha.in.inboxhub.example\r\nSubject: Invoice\r\n"
        f"Date: Mon, 03 Mar 2025 10:00:00 +0000\r\nMessage-ID: <1@{case.from_domain}>\r\n\r\nHello.\r\n"
    ).encode()
    if not case.dkim_domain:
        return raw
    headers = [b"from", b"to", b"subject", b"date"]
    return dkim.sign(raw, b"sel", case.dkim_domain.encode(), key.private_pem, include_headers=headers) + raw


# --- the implementations ---------------------------------------------------------------


def ours(case: Case, raw: bytes, server: DNSServer) -> str:
    resolver = Resolver([server.address])
    verdict = evaluate_sender(
        raw=raw, peer_ip=case.ip, helo=HELO, mail_from=case.mail_from, resolver=resolver
    )
    dmarc = verdict.results["dmarc"]
    return outcome(dmarc["result"], dmarc["policy"])


def local_resolver(server: DNSServer) -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [dns.nameserver.Do53Nameserver(server.host, server.port)]
    resolver.timeout = resolver.lifetime = LOOKUP_TIMEOUT
    resolver.cache = None
    return resolver


def make_dnsfunc(resolver: dns.resolver.Resolver) -> Callable[..., str | bytes | None]:
    """authheaders' dnsfunc: the first TXT record of a name, bytes for dkimpy and str for DMARC."""

    def dnsfunc(name: str | bytes, timeout: float = 5) -> str | bytes | None:
        text = name.decode() if isinstance(name, bytes) else name
        try:
            answer = resolver.resolve(text, "TXT", lifetime=min(timeout, LOOKUP_TIMEOUT), search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        value = b"".join(next(iter(answer)).strings)
        return value if isinstance(name, bytes) else value.decode()

    return dnsfunc


def library(case: Case, raw: bytes, server: DNSServer, *, native: bool) -> str:
    """authheaders' DMARC outcome; SPF by pyspf through dnspython's default resolver (loopback)."""
    spf.DNSLookup = PYSPF_LOOKUP  # pyspf's own dnspython lookup, not ours
    try:
        header = authheaders.authenticate_message(
            raw,
            AUTHSERV_ID,
            spf=bool(case.mail_from),
            ip=case.ip,
            mail_from=case.mail_from,
            helo=HELO,
            dnsfunc=None if native else make_dnsfunc(local_resolver(server)),
        )
    except Exception as exc:  # what a receiver calling it would get
        return f"exception {exc.__class__.__name__}"
    finally:
        spf.DNSLookup = OURS_SPF_LOOKUP
    result = re.search(r"\bdmarc=(\w+)", header)
    policy = re.search(r"\bpolicy\.dmarc=(\w+)", header)
    return outcome(result.group(1) if result else "?", policy.group(1) if policy else "")


def outcome(result: str, policy: str) -> str:
    return f"{result} (p={policy})" if result not in ("none", "") and policy else result


def ours_domain(domain: str, server: DNSServer) -> str:
    report = check_domain(domain, resolver=Resolver([server.address]))
    if report.temporary_error:
        return "temporary error"
    spf_text = report.spf or "-"
    dmarc = f"{report.dmarc_policy} at {report.dmarc_domain}" if report.dmarc else "no DMARC"
    return f"spf[{spf_text}] {dmarc}"


NO_DMARC_ERRORS = (
    checkdmarc.dmarc.DMARCRecordNotFound,
    checkdmarc.dmarc.UnrelatedTXTRecordFoundAtDMARC,
    checkdmarc.dmarc.MultipleDMARCRecords,
)


def same(ours: str, theirs: str) -> bool:
    """Equal once checkdmarc's exception names, shown in brackets, are set aside."""
    return ours == re.sub(r" \[\w+\]", "", theirs)


def library_domain(domain: str, server: DNSServer) -> str:
    checkdmarc.utils.DNS_CACHE.clear()
    options = {
        "nameservers": [dns.nameserver.Do53Nameserver(server.host, server.port)],
        "timeout": LOOKUP_TIMEOUT,
        "retries": 0,
    }
    try:
        spf_text = checkdmarc.spf.get_spf_record(domain, **options)["record"]
    except checkdmarc.spf.SPFRecordNotFound as exc:
        spf_text = f"- [{exc.__class__.__name__}]"
    except Exception as exc:
        spf_text = f"{exc.__class__.__name__}"
    try:
        found = checkdmarc.dmarc.get_dmarc_record(domain, **options)
    except NO_DMARC_ERRORS as exc:  # a checker's complaint; for a receiver: no DMARC record
        dmarc = f"no DMARC [{exc.__class__.__name__}]"
    except Exception as exc:
        dmarc = f"{exc.__class__.__name__}"
    else:
        tags = found["parsed"]["tags"]
        where = found["location"]
        policy = tags["p"]["value"] if where == domain else tags.get("sp", tags["p"])["value"]
        dmarc = f"{policy} at {where}"
    return f"spf[{spf_text}] {dmarc}"


# --- running ---------------------------------------------------------------------------


@dataclass
class Row:
    case: str
    ours: str
    library: str
    native: str = ""
    times: dict[str, float] = field(default_factory=dict)


def timed(function: Callable[[], str], runs: int) -> tuple[str, float]:
    results, seconds = [], []
    for _ in range(runs):
        start = time.perf_counter()
        results.append(function())
        seconds.append(time.perf_counter() - start)
    distinct = sorted(set(results))  # more than one: the answer depends on the DNS record order
    return " OR ".join(distinct), statistics.median(seconds)


def run_case(case: Case, key: Key, server: DNSServer, runs: int) -> Row:
    raw = message(case, key)
    server.answering = not case.dns_down
    runs = 1 if case.dns_down else runs  # each costs a timeout or several
    try:
        mine, t_ours = timed(lambda: ours(case, raw, server), runs)
        theirs, t_lib = timed(lambda: library(case, raw, server, native=False), runs)
        native, t_native = timed(lambda: library(case, raw, server, native=True), 1)
    finally:
        server.answering = True
    return Row(case.name, mine, theirs, native, {"ours": t_ours, "authheaders": t_lib, "native": t_native})


def run_domain(domain: str, dns_down: bool, server: DNSServer, runs: int) -> Row:
    server.answering = not dns_down
    runs = 1 if dns_down else runs
    try:
        mine, t_ours = timed(lambda: ours_domain(domain, server), runs)
        theirs, t_lib = timed(lambda: library_domain(domain, server), runs)
    finally:
        server.answering = True
    name = f"{domain} (DNS down)" if dns_down else domain
    return Row(name, mine, theirs, times={"ours": t_ours, "checkdmarc": t_lib})


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def print_table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    print(f"\n## {title}\n")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="evaluations per case for the median time")
    args = parser.parse_args()

    key = generate_dkim_key()
    with DNSServer(negative_ttl=0) as server:
        build_zones(server, key)
        settings.DNS_NAMESERVERS = [server.address]
        settings.TRUSTED_NETWORKS = []
        settings.TRUSTED_RELAYS = []
        dns.resolver.default_resolver = local_resolver(server)  # authheaders native, dkimpy, pyspf
        ours(CASES[0], message(CASES[0], key), server)  # warm up: the public suffix list, imports
        library(CASES[0], message(CASES[0], key), server, native=False)

        started = time.perf_counter()
        rows = [run_case(case, key, server, args.runs) for case in CASES]
        domain_rows = [run_domain(domain, down, server, args.runs) for domain, down in DOMAIN_CASES]
        elapsed = time.perf_counter() - started

    print_table(
        f"DMARC outcome: evaluate_sender vs authheaders.authenticate_message (median ms of {args.runs} runs)",
        [
            "case",
            "ours",
            "authheaders (dnsfunc)",
            "agree",
            "authheaders (native)",
            "ours ms",
            "authheaders ms",
        ],
        [
            [
                r.case,
                r.ours,
                r.library,
                "yes" if r.ours == r.library else "NO",
                r.native,
                ms(r.times["ours"]),
                ms(r.times["authheaders"]),
            ]
            for r in rows
        ],
    )
    print_table(
        f"Domain records: check_domain vs checkdmarc SPF + DMARC lookups (median ms of {args.runs})",
        ["domain", "ours", "checkdmarc", "agree", "ours ms", "checkdmarc ms"],
        [
            [r.case, r.ours, r.library, "yes" if same(r.ours, r.library) else "NO", ms(r.times["ours"])]
            + [ms(r.times["checkdmarc"])]
            for r in domain_rows
        ],
    )
    live = [r for r in rows if not r.case.startswith("DNS down")]
    live_domains = [r for r in domain_rows if "DNS down" not in r.case]
    print("\n## Median over cases (DNS answering), ms per evaluation\n")
    print(f"evaluate_sender            {ms(statistics.median(r.times['ours'] for r in live))}")
    print(f"authheaders (dnsfunc)      {ms(statistics.median(r.times['authheaders'] for r in live))}")
    print(f"check_domain               {ms(statistics.median(r.times['ours'] for r in live_domains))}")
    print(f"checkdmarc spf+dmarc       {ms(statistics.median(r.times['checkdmarc'] for r in live_domains))}")
    disagreements = sum(r.ours != r.library for r in rows) + sum(
        not same(r.ours, r.library) for r in domain_rows
    )
    print(f"\n{len(rows)} message cases, {len(domain_rows)} domain cases, {disagreements} disagreements")
    print(f"wall time {elapsed:.1f} s")


if __name__ == "__main__":
    main()
