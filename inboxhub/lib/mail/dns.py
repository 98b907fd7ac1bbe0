"""The one DNS resolver for mail checks: bounded in time, answers cached by their TTL.

Sender authentication (G8) and the settings pages' domain checks (C4) look
names up here and nowhere else, so a slow or dead DNS costs a bounded time
and a busy sender domain costs one lookup per name per TTL.

`DNS_NAMESERVERS` lists servers as `address` or `address:port`
(`127.0.0.1`, `127.0.0.1:5353`, `::1`, `[::1]:5353`); empty means the
system's `/etc/resolv.conf`.
"""

import ipaddress
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import dns.exception
import dns.name
import dns.nameserver
import dns.rdata
import dns.rdatatype
import dns.resolver
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

QUERY_TIMEOUT = 1.0  # seconds for one lookup, all servers and retries included
MAX_TTL = 86_400  # a record is looked up again at least daily, whatever its TTL says
MAX_NEGATIVE_TTL = 900  # "no such record" is believed for at most 15 minutes
MAX_ENTRIES = 20_000

Records = tuple[dns.rdata.Rdata, ...]

_deadline: ContextVar[float | None] = ContextVar("dns_deadline", default=None)


class DNSTempError(Exception):
    """DNS gave no usable answer in time: try again later, never treat as "no record"."""


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Bound the total time of all lookups inside; once spent, lookups not cached raise DNSTempError."""
    deadline = time.monotonic() + seconds
    outer = _deadline.get()
    token = _deadline.set(deadline if outer is None else min(outer, deadline))
    try:
        yield
    finally:
        _deadline.reset(token)


def parse_nameserver(text: str) -> tuple[str, int]:
    """Read `address`, `address:port`, `[v6 address]:port` into (address, port)."""
    text = text.strip()
    port = 53
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ImproperlyConfigured(f"DNS_NAMESERVERS holds {text!r}, which is not [address]:port")
            port = _port(text, rest[1:])
    elif text.count(":") == 1:
        address, _, port_text = text.partition(":")
        port = _port(text, port_text)
    else:
        address = text
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise ImproperlyConfigured(f"DNS_NAMESERVERS holds {text!r}, which is not an IP address") from None
    return address, port


def _port(text: str, port_text: str) -> int:
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ImproperlyConfigured(f"DNS_NAMESERVERS holds {text!r}, whose port is not 1-65535")
    return int(port_text)


class Resolver:
    """Look names up with a time limit per lookup and per budget, and cache answers by TTL.

    Thread-safe; one per process is enough (see `get_resolver`).
    """

    def __init__(
        self,
        nameservers: Sequence[str] = (),
        *,
        query_timeout: float = QUERY_TIMEOUT,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.query_timeout = query_timeout
        self._max_entries = max_entries
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, Records]] = {}
        self._lock = threading.Lock()
        self._unconfigured = ""
        try:
            self._resolver = dns.resolver.Resolver(configure=not nameservers)
        except dns.resolver.NoResolverConfiguration as exc:
            self._resolver = dns.resolver.Resolver(configure=False)
            self._unconfigured = f"no DNS server configured ({exc})"
        if nameservers:
            self._resolver.nameservers = [
                dns.nameserver.Do53Nameserver(*parse_nameserver(server)) for server in nameservers
            ]
        self._resolver.cache = None  # this class caches, with its own negative TTL and bounds
        self._resolver.timeout = query_timeout

    def query(self, name: str, rdtype: str) -> Records:
        """The records of `name` and `rdtype`; () when the name or the type does not exist."""
        key = (name.lower().rstrip("."), rdtype.upper())
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        try:
            qname = dns.name.from_text(key[0])
        except dns.exception.DNSException:
            return ()  # not a valid name (empty or too long label): nothing can exist there
        records, ttl = self._ask(qname, key[1])
        self._store(key, records, ttl)
        return records

    def txt(self, name: str) -> list[bytes]:
        """Each TXT record of `name`, its strings joined (RFC 7208 3.3, RFC 6376 3.6.2.2)."""
        return [b"".join(record.strings) for record in self.query(name, "TXT")]

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def _ask(self, qname: dns.name.Name, rdtype: str) -> tuple[Records, int]:
        if self._unconfigured:
            raise DNSTempError(self._unconfigured)
        lifetime = self._lifetime()
        try:
            answer = self._resolver.resolve(
                qname, rdtype, lifetime=lifetime, raise_on_no_answer=False, search=False
            )
        except dns.resolver.NXDOMAIN as exc:
            response = exc.responses().get(qname)
            ttl = response.resolve_chaining().minimum_ttl if response is not None else 0
            return (), min(ttl, MAX_NEGATIVE_TTL)
        except dns.exception.DNSException as exc:
            # Timeouts, SERVFAIL or REFUSED from every server, malformed answers.
            raise DNSTempError(f"{qname} {rdtype}: {exc.__class__.__name__}") from exc
        ttl = answer.chaining_result.minimum_ttl
        if answer.rrset is None:
            return (), min(ttl, MAX_NEGATIVE_TTL)
        return tuple(answer.rrset), min(ttl, MAX_TTL)

    def _lifetime(self) -> float:
        deadline = _deadline.get()
        if deadline is None:
            return self.query_timeout
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DNSTempError("DNS time budget spent")
        return min(self.query_timeout, remaining)

    def _store(self, key: tuple[str, str], records: Records, ttl: int) -> None:
        if ttl <= 0:
            return
        now = self._clock()
        with self._lock:
            if len(self._cache) >= self._max_entries:
                for stale in [k for k, (expires, _) in self._cache.items() if expires <= now]:
                    del self._cache[stale]
                while len(self._cache) >= self._max_entries:
                    del self._cache[next(iter(self._cache))]  # oldest stored first
            self._cache[key] = (now + ttl, records)


_shared: Resolver | None = None
_shared_lock = threading.Lock()


def get_resolver() -> Resolver:
    """The process's resolver, built from settings.DNS_NAMESERVERS on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Resolver(settings.DNS_NAMESERVERS)
        return _shared


@receiver(setting_changed)
def _forget_resolver(*, setting: str, **kwargs: object) -> None:
    global _shared
    if setting == "DNS_NAMESERVERS":
        with _shared_lock:
            _shared = None
