"""A real DNS server on loopback for tests: records added per test, queries counted.

    def test_it_reads_spf(dns_server, settings):
        dns_server.add_txt("acme.example", "v=spf1 ip4:192.0.2.1 -all")
        settings.DNS_NAMESERVERS = [dns_server.address]   # "127.0.0.1:<port>"

Unknown names answer NXDOMAIN; a known name without the asked type answers
an empty NOERROR. Both carry an SOA whose minimum is `negative_ttl`, so
resolvers cache them as real servers' answers are cached. `answering =
False` drops every query (a dead DNS). UDP only: keep records under 1232
bytes per answer (a 2048-bit DKIM key fits).

Import the fixture into a test module: `from tests.dnsserver import dns_server  # noqa: F401`.
"""

import socket
import threading
from collections import Counter
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

MAX_CNAME_CHAIN = 8


class DNSServer:
    def __init__(self, host: str = "127.0.0.1", *, negative_ttl: int = 60) -> None:
        self.negative_ttl = negative_ttl
        self.answering = True
        self.queries: Counter[tuple[str, str]] = Counter()
        self._records: dict[tuple[str, str], dns.rrset.RRset] = {}
        self._lock = threading.Lock()
        self._socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind((host, 0))
        self._socket.settimeout(0.1)
        self.host, self.port = self._socket.getsockname()[:2]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"dns-server-{self.port}", daemon=True)

    @property
    def address(self) -> str:
        """The server in DNS_NAMESERVERS form: `127.0.0.1:5353`, `[::1]:5353`."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def start(self) -> "DNSServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._socket.close()

    def __enter__(self) -> "DNSServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- records -----------------------------------------------------------------

    def add(self, name: str, rdtype: str, *values: str, ttl: int = 300) -> None:
        """Add records in zone-file text: add("acme.example", "MX", "10 mx.acme.example.")."""
        owner = dns.name.from_text(name)
        with self._lock:
            rrset = self._records.get((_key(name), rdtype.upper()))
            if rrset is None:
                rrset = dns.rrset.RRset(owner, dns.rdataclass.IN, dns.rdatatype.from_text(rdtype))
                self._records[(_key(name), rdtype.upper())] = rrset
            for value in values:
                rrset.add(dns.rdata.from_text(dns.rdataclass.IN, rrset.rdtype, value), ttl)

    def add_txt(self, name: str, text: str, *, ttl: int = 300) -> None:
        """Add one TXT record, split into 255-byte strings as a zone file would."""
        data = text.encode()
        chunks = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
        self.add(name, "TXT", " ".join(_quote(chunk) for chunk in chunks), ttl=ttl)

    def remove(self, name: str, rdtype: str | None = None) -> None:
        with self._lock:
            for key in [k for k in self._records if k[0] == _key(name) and rdtype in (None, k[1])]:
                del self._records[key]

    def count(self, name: str, rdtype: str | None = None) -> int:
        """How many queries arrived for `name` (of `rdtype`, or of any type)."""
        with self._lock:
            return sum(
                n
                for (qname, qtype), n in self.queries.items()
                if qname == _key(name) and rdtype in (None, qtype)
            )

    # --- serving -----------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                wire, client = self._socket.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(wire)
            except Exception:  # noqa: S112 - a test server ignores garbage as real ones do
                continue
            if not query.question:
                continue
            question = query.question[0]
            with self._lock:
                self.queries[(_key(question.name.to_text()), dns.rdatatype.to_text(question.rdtype))] += 1
                if not self.answering:
                    continue
                response = self._answer(query)
            self._socket.sendto(response.to_wire(max_size=65535), client)

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        rdtype = dns.rdatatype.to_text(question.rdtype)
        name = _key(question.name.to_text())
        for _ in range(MAX_CNAME_CHAIN):
            rrset = self._records.get((name, rdtype))
            if rrset is not None:
                response.answer.append(rrset)
                return response
            cname = self._records.get((name, "CNAME"))
            if cname is None or rdtype == "CNAME":
                break
            response.answer.append(cname)
            name = _key(next(iter(cname)).target.to_text())
        if not any(key[0] == name for key in self._records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        response.authority.append(self._soa(name))
        return response

    def _soa(self, name: str) -> dns.rrset.RRset:
        owner = dns.name.from_text(name)
        zone = owner.split(3)[1] if len(owner) > 3 else owner  # the two last labels: "acme.example."
        rdata = dns.rdata.from_text(
            dns.rdataclass.IN,
            dns.rdatatype.SOA,
            f"ns.{zone} hostmaster.{zone} 1 3600 600 86400 {self.negative_ttl}",
        )
        rrset = dns.rrset.RRset(zone, dns.rdataclass.IN, dns.rdatatype.SOA)
        rrset.add(rdata, self.negative_ttl)
        return rrset


def _key(name: str) -> str:
    return name.lower().rstrip(".")


def _quote(chunk: bytes) -> str:
    escaped = "".join(
        chr(byte) if 32 <= byte < 127 and byte not in b'"\\' else f"\\{byte:03d}" for byte in chunk
    )
    return f'"{escaped}"'


@pytest.fixture
def dns_server() -> Iterator[DNSServer]:
    """A DNS server on 127.0.0.1 and a free UDP port, stopped after the test."""
    with DNSServer() as server:
        yield server
