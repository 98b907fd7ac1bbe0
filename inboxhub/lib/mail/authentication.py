"""Decide whether a message comes from the domain its From names (G8).

`evaluate_sender` is for the ingestion worker: SPF (pyspf) for the
connecting IP, HELO and envelope sender; every DKIM signature (dkimpy);
DMARC policy discovery and alignment (RFC 7489) of the From domain — or,
for mail from a trusted relay, that relay's own `Authentication-Results`
header (parsed with authres); clients on trusted networks count as
authenticated without any lookup. `evaluate_offline` serves `inspect_email`.

Every lookup goes through `inboxhub.lib.mail.dns`: at most `DNS_BUDGET` seconds
per message, answers cached by TTL. A DNS that does not answer gives
`temperror`, never a stuck call. A DMARC `p=reject`/`quarantine` failure
is flagged as possible spoofing; the message is kept either way. A DKIM key
that is missing, malformed or revoked is that signature's result with its
reason (RFC 6376 6.1.2), never a logged error: it is the sender's doing.
"""

import email.utils
import enum
import ipaddress
import logging
import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

import authres
import dkim
import spf
from django.conf import settings
from dkim.util import InvalidTagValueList, parse_tag_value

from inboxhub.lib.mail.dns import DNSTempError, Resolver, get_resolver, time_budget
from inboxhub.lib.mail.dnsrecords import dmarc_records, organizational_domain, record_tags

DNS_BUDGET = 3.0  # seconds of DNS per message, all checks together
MAX_SIGNATURES = 10  # DKIM signatures checked per message; more is abuse (each costs a lookup and RSA)
MIN_KEY_BITS = 1024  # RFC 8301: shorter RSA keys do not verify

logger = logging.getLogger(__name__)


class Method(enum.StrEnum):
    DKIM = "dkim"
    SPF = "spf"
    TRUSTED_NETWORK = "trusted_network"
    TRUSTED_RELAY = "trusted_relay"
    NONE = ""


@dataclass(frozen=True)
class AuthVerdict:
    """What is known of a message's sender: stored with the message and shown on it."""

    authenticated: bool
    domain: str  # the authenticated From domain, "" when not authenticated
    method: Method
    reason: str  # short and human: "dkim=pass (acme.example, aligned)", "spf=fail", "temperror"
    spoofing_suspected: bool = False  # DMARC p=reject/quarantine failed: kept, shown flagged
    results: dict[str, Any] = field(default_factory=dict, compare=False)  # JSON-able details

    @property
    def label(self) -> str:
        if not self.authenticated:
            return f"not verified: {self.reason}"
        if self.domain:
            return f"authenticated as {self.domain}"
        return f"authenticated ({self.reason})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "authenticated": self.authenticated,
            "domain": self.domain,
            "method": str(self.method),
            "reason": self.reason,
            "spoofing_suspected": self.spoofing_suspected,
            "label": self.label,
            "results": self.results,
        }

    def stored(self, *, from_email: str) -> dict[str, Any]:
        """What a message stores of this verdict: only what its own fields and the rule do not say.

        The message keeps the authenticated flag, the reason and the spoofing flag in columns of their
        own, and `from_email`; the domain, the method and the label follow from them, and so do the
        From domain when it is `from_email`'s and a trusted network the reason names. Mail from a
        trusted network stores `{}` (issue 18). `stored_verdict` gives the whole verdict back.
        """
        results = dict(self.results)
        from_domain = results.get("from_domain")
        if from_domain == _email_domain(from_email):
            del results["from_domain"]
        elif "from_domain" not in results:
            from_domain = ""
            results["from_domain"] = None  # none at all, not the address's
        if self.reason == f"trusted network {results.get('trusted_network')}":
            del results["trusted_network"]
        stored: dict[str, Any] = {}
        if self.domain != (from_domain if self.authenticated else ""):
            stored["domain"] = self.domain
        if self.method != _implied_method(self.authenticated, self.reason, self.results):
            stored["method"] = str(self.method)
        if results:
            stored["results"] = results
        return stored


def stored_verdict(
    stored: dict[str, Any], *, authenticated: bool, reason: str, spoofing_suspected: bool, from_email: str
) -> AuthVerdict:
    """The verdict `AuthVerdict.stored` kept, whole again, with the message's fields it left out."""
    results = dict(stored.get("results", {}))
    from_domain = results.pop("from_domain", _email_domain(from_email))
    if reason.startswith("trusted network ") and "trusted_network" not in results:
        results["trusted_network"] = reason.removeprefix("trusted network ")
    results = {"from_domain": from_domain, **results} if from_domain is not None else results
    domain = stored.get("domain", (from_domain or "") if authenticated else "")
    method = Method(stored.get("method", _implied_method(authenticated, reason, results)))
    return AuthVerdict(authenticated, domain, method, reason, spoofing_suspected, results=results)


def _email_domain(address: str) -> str:
    """The domain of an address as a verdict names it (`_domain_text`); "" without one."""
    if "@" not in address:
        return ""
    return _domain_text(address.rpartition("@")[2].encode("utf-8", "surrogateescape"))


def _implied_method(authenticated: bool, reason: str, results: dict[str, Any]) -> Method:
    """The method a verdict's other facts imply: the one every verdict so far was given with them."""
    if not authenticated:
        return Method.NONE
    if "trusted_network" in results or reason.startswith("trusted network "):
        return Method.TRUSTED_NETWORK
    if "authentication_results" in results:
        return Method.TRUSTED_RELAY
    if reason.startswith("spf=pass"):
        return Method.SPF
    return Method.DKIM


def evaluate_sender(
    *, raw: bytes, peer_ip: str | None, helo: str, mail_from: str, resolver: Resolver | None = None
) -> AuthVerdict:
    """Evaluate SPF, DKIM and DMARC of an incoming message, or trust its network or relay (G8)."""
    headers = _headers(raw)
    from_domain = _from_domain(headers)
    ip = _ip(peer_ip)
    if ip is not None and any(ip in network for network in settings.TRUSTED_RELAYS):
        relay = _relay_verdict(headers, from_domain, settings.TRUSTED_AUTHSERV_ID)
        if relay is not None:
            return relay
        # The relay wrote no verdict of its own: check DKIM here; SPF of the relay's IP would say nothing.
        return _evaluate(raw, from_domain, resolver or get_resolver(), spf_identity=None)
    if ip is not None and (network := next((n for n in settings.TRUSTED_NETWORKS if ip in n), None)):
        return AuthVerdict(
            authenticated=True,
            domain=from_domain,
            method=Method.TRUSTED_NETWORK,
            reason=f"trusted network {network}",
            results={"from_domain": from_domain, "trusted_network": str(network)},
        )
    identity = (str(ip), mail_from, helo) if ip is not None else None
    return _evaluate(raw, from_domain, resolver or get_resolver(), spf_identity=identity)


def evaluate_offline(
    raw: bytes, *, trusted_authserv_id: str | None = None, resolver: Resolver | None = None
) -> dict[str, Any]:
    """Evaluate what needs no SMTP connection: DKIM, DMARC by DKIM, the relay's header (G7, G8)."""
    headers = _headers(raw)
    from_domain = _from_domain(headers)
    if trusted_authserv_id:
        relay = _relay_verdict(headers, from_domain, trusted_authserv_id)
        if relay is not None:
            return relay.as_dict()
    return _evaluate(raw, from_domain, resolver or get_resolver(), spf_identity=None).as_dict()


# --- own evaluation -------------------------------------------------------------------


def _evaluate(
    raw: bytes, from_domain: str, resolver: Resolver, *, spf_identity: tuple[str, str, str] | None
) -> AuthVerdict:
    results: dict[str, Any] = {"from_domain": from_domain}
    token = _spf_resolver.set(resolver)
    try:
        with time_budget(DNS_BUDGET):
            dkim_results = _check_dkim(raw, resolver)
            dmarc = _dmarc_record(from_domain, resolver) if from_domain else _NO_DMARC
            spf_results = _check_spf(*spf_identity) if spf_identity else None
    finally:
        _spf_resolver.reset(token)
    results["dkim"] = dkim_results
    if spf_results is not None:
        results["spf"] = spf_results
    if not from_domain:
        results["dmarc"] = {"result": "permerror", "reason": "no single From address"}
        return AuthVerdict(False, "", Method.NONE, "no single From address", results=results)

    for signature in dkim_results:
        signature["aligned"] = _aligned(signature["domain"], from_domain, dmarc.adkim)
    spf_mailfrom = spf_results["mailfrom"] if spf_results else None
    if spf_mailfrom is not None:
        spf_mailfrom["aligned"] = _aligned(spf_mailfrom["domain"], from_domain, dmarc.aspf)

    dkim_pass = next((s for s in dkim_results if s["result"] == "pass" and s["aligned"]), None)
    spf_pass = (
        spf_mailfrom
        if spf_mailfrom and spf_mailfrom["result"] == "pass" and spf_mailfrom["aligned"]
        else None
    )
    temperror = any(s["result"] == "temperror" for s in dkim_results) or (
        spf_mailfrom is not None and spf_mailfrom["result"] == "temperror"
    )
    results["dmarc"] = dmarc_result = dmarc.evaluate(passed=bool(dkim_pass or spf_pass), temperror=temperror)

    if dkim_pass:
        reason = f"dkim=pass ({dkim_pass['domain']}, aligned)"
        return AuthVerdict(True, from_domain, Method.DKIM, reason, results=results)
    if spf_pass:
        reason = f"spf=pass ({spf_pass['domain']}, aligned)"
        return AuthVerdict(True, from_domain, Method.SPF, reason, results=results)
    spoofing = dmarc_result["result"] == "fail" and dmarc_result["policy"] in ("reject", "quarantine")
    reason = _failure_reason(dkim_results, spf_mailfrom, dmarc_result, spoofing)
    return AuthVerdict(False, "", Method.NONE, reason, spoofing_suspected=spoofing, results=results)


def _failure_reason(
    dkim_results: list[dict], spf_mailfrom: dict | None, dmarc: dict[str, Any], spoofing: bool
) -> str:
    """The one fact that best says why the sender is not verified."""
    if spoofing:
        return f"dmarc=fail (p={dmarc['policy']})"
    if dmarc["result"] == "temperror":
        return "temperror"
    if failed := next((s for s in dkim_results if s["result"] in ("fail", "permerror")), None):
        return f"dkim={failed['result']}" + (f" ({failed['reason']})" if failed["reason"] else "")
    if spf_mailfrom and spf_mailfrom["result"] in ("fail", "softfail", "permerror"):
        return f"spf={spf_mailfrom['result']}"
    if passed := next((s for s in dkim_results if s["result"] == "pass"), None):
        return f"dkim=pass ({passed['domain']}, not aligned)"
    if spf_mailfrom and spf_mailfrom["result"] == "pass":
        return f"spf=pass ({spf_mailfrom['domain']}, not aligned)"
    if not dkim_results:
        return "dkim=none"
    first = dkim_results[0]
    return f"dkim={first['result']}" + (f" ({first['reason']})" if first["reason"] else "")


# --- DKIM (dkimpy) ----------------------------------------------------------------------


def _check_dkim(raw: bytes, resolver: Resolver) -> list[dict[str, Any]]:
    """Verify every DKIM signature (up to MAX_SIGNATURES), topmost first."""
    try:
        verifier = dkim.DKIM(raw, minkey=MIN_KEY_BITS)
    except Exception:  # unparseable mail simply has no verifiable signature
        return []
    count = sum(1 for name, _ in verifier.headers if name.lower() == b"dkim-signature")
    results = []
    for index in range(min(count, MAX_SIGNATURES)):
        result = _verify_signature(verifier, index, resolver)
        if result["result"] != "pass":
            logger.debug("DKIM d=%(domain)s s=%(selector)s: %(result)s (%(reason)s)", result)
        results.append(result)
    return results


class _KeyProblem(Exception):
    """The key record of a signature says why it cannot verify: a verdict, never an error to log.

    Raised from the DNS function handed to dkimpy, which lets it through: dkimpy
    would otherwise log each such record as an ERROR (issue #15) and only answer False.
    """

    def __init__(self, result: str, reason: str) -> None:
        super().__init__(reason)
        self.result = result
        self.reason = reason


def _verify_signature(verifier: dkim.DKIM, index: int, resolver: Resolver) -> dict[str, Any]:
    def dnsfunc(name: bytes, timeout: float = 5) -> bytes:
        key_name = name.decode("utf-8", "replace").rstrip(".")  # a UTF-8 d= is looked up as IDNA
        try:
            records = resolver.txt(key_name)
        except DNSTempError as exc:
            raise _KeyProblem("temperror", f"no DNS answer for {key_name} in time") from exc
        return _usable_key(key_name, records)

    verifier.signature_fields = {}
    try:
        if verifier.verify(idx=index, dnsfunc=dnsfunc):
            result, reason = "pass", ""
        else:
            result, reason = "fail", "signature did not verify"
    except _KeyProblem as problem:
        result, reason = problem.result, problem.reason
    except dkim.ValidationError as exc:
        result, reason = _signature_problem(str(exc))
    except Exception as exc:  # a malformed signature is that signature's permerror
        result, reason = "permerror", f"malformed signature: {_plain(str(exc))}"
        if not verifier.signature_fields:
            reason = "unreadable signature"
    fields = verifier.signature_fields or {}
    return {
        "domain": _domain_text(fields.get(b"d", b"")),
        "selector": fields.get(b"s", b"").decode("ascii", "replace"),
        "result": result,
        "reason": _shortened(reason),
    }


def _usable_key(key_name: str, records: list[bytes]) -> bytes:
    """The first key record at `key_name` that can verify; otherwise why none can (RFC 6376 6.1.2).

    Several records may be published (a key being rolled over); any of them may be used.
    """
    if not any(record.strip() for record in records):
        raise _KeyProblem("permerror", f"no key published at {key_name}")
    problems = []
    for record in records:
        try:
            _check_key_record(key_name, record)
        except _KeyProblem as problem:
            problems.append(problem)
        else:
            return record
    raise problems[0]


def _check_key_record(key_name: str, record: bytes) -> None:
    try:
        tags = parse_tag_value(record)
    except InvalidTagValueList:
        raise _KeyProblem("permerror", f"unreadable key record at {key_name}") from None
    if b"p" in tags and not tags[b"p"].strip():
        # RFC 6376 6.1.2 step 6: an empty p= means the key was revoked, a failed signature check.
        raise _KeyProblem("fail", f"key revoked at {key_name}")
    service = tags.get(b"s", b"*").strip()
    if service not in (b"*", b"email"):  # RFC 6376 3.6.1: a key for other services is ignored
        text = service.decode("ascii", "replace")
        raise _KeyProblem("permerror", f"key at {key_name} is for s={text}, not email")
    try:
        _, bits, key_type, _ = dkim.evaluate_pk(key_name.encode(), record)
    except dkim.NaClNotFoundError:
        raise _KeyProblem("permerror", f"ed25519 key at {key_name}: ed25519 is not checked") from None
    except Exception as exc:  # dkimpy's KeyFormatError, and binascii.Error for bad base64
        raise _KeyProblem("permerror", f"malformed key at {key_name}: {_key_error(exc)}") from None
    if key_type == b"rsa" and bits < MIN_KEY_BITS:
        raise _KeyProblem("permerror", f"key at {key_name} has {bits} bits, fewer than {MIN_KEY_BITS}")


def _key_error(exc: Exception) -> str:
    text = str(exc)
    if text == "bad version":
        return "v= is not DKIM1"
    if text.startswith(("could not parse", "Incorrect padding", "Invalid base64", "Non-base64")):
        return "p= is not a public key"
    if text.startswith("incomplete RSA public key"):
        return "no p= tag"
    return _plain(text)


def _signature_problem(text: str) -> tuple[str, str]:
    """The result and reason for a signature dkimpy refused to check, or whose body changed."""
    if text.startswith("body hash mismatch"):
        return "fail", "body hash mismatch"
    if text.startswith("x= value is past"):
        return "fail", "signature expired"
    return "permerror", f"malformed signature: {_plain(text)}"


_BYTES_REPR = re.compile(r"""\bb(['"])(.*?)\1""")


def _plain(text: str) -> str:
    """dkimpy's message without Python's bytes notation: "missing d=", not "missing b'd'="."""
    return _BYTES_REPR.sub(r"\2", text)


def _shortened(reason: str, limit: int = 160) -> str:
    """One line (tag values may hold folded whitespace) of at most `limit` characters."""
    reason = " ".join(reason.split())
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"


# --- SPF (pyspf) ------------------------------------------------------------------------

# pyspf looks names up through its module-level `DNSLookup`; it is pointed at the
# resolver of the evaluation running in this thread.
_spf_resolver: ContextVar[Resolver | None] = ContextVar("spf_resolver", default=None)


def _spf_lookup(name: str, qtype: str, strict: bool = True, timeout: float = 0) -> list:
    resolver = _spf_resolver.get() or get_resolver()
    try:
        records = resolver.query(name, qtype)
    except DNSTempError as exc:
        raise spf.TempError(f"DNS {exc}") from exc
    answers = []
    for record in records:
        if qtype in ("A", "AAAA"):
            answers.append(((name, qtype), record.address))
        elif qtype == "MX":
            answers.append(((name, qtype), (record.preference, record.exchange)))
        elif qtype == "PTR":
            answers.append(((name, qtype), record.target.to_text(True)))
        elif qtype in ("TXT", "SPF"):
            answers.append(((name, qtype), record.strings))
    return answers


spf.DNSLookup = _spf_lookup


def _check_spf(ip: str, mail_from: str, helo: str) -> dict[str, dict[str, Any] | None]:
    """SPF of the HELO name and of the envelope sender (RFC 7208 2.3, 2.4)."""
    helo_domain = helo.strip().rstrip(".").lower()
    helo_result = None
    if "." in helo_domain and not helo_domain.startswith("["):
        helo_result = _spf(ip, f"postmaster@{helo_domain}", helo_domain, helo_domain)
    mail_from = mail_from.strip().strip("<>")
    if mail_from:
        # A sender without a domain ("MAIL FROM:<postmaster>") takes the HELO name's (RFC 7208 4.3).
        domain = mail_from.rpartition("@")[2].rstrip(".").lower() if "@" in mail_from else helo_domain
        mailfrom_result = _spf(ip, mail_from, helo_domain, domain)
    elif helo_result is not None:  # the null sender (bounces) is checked as postmaster@HELO
        mailfrom_result = dict(helo_result)
    else:
        mailfrom_result = {"domain": "", "result": "none", "reason": "no envelope sender nor HELO name"}
    return {"helo": helo_result, "mailfrom": mailfrom_result}


def _spf(ip: str, sender: str, helo: str, domain: str) -> dict[str, Any]:
    try:
        result, explanation = spf.check2(i=ip, s=sender, h=helo, querytime=DNS_BUDGET)
    except Exception as exc:  # a record pyspf chokes on is the sender's permerror
        result, explanation = "permerror", str(exc)
    return {"domain": domain, "result": result, "reason": str(explanation)[:120]}


# --- DMARC (RFC 7489) -------------------------------------------------------------------


@dataclass(frozen=True)
class _DMARCRecord:
    domain: str  # where the record was found: the From domain or its organizational domain
    policy: str  # none, quarantine, reject; "" when there is no record
    adkim: str = "r"
    aspf: str = "r"
    error: str = ""  # "temperror" when DNS did not answer

    def evaluate(self, *, passed: bool, temperror: bool) -> dict[str, Any]:
        if self.error:
            result = self.error
        elif not self.policy:
            result = "none"
        elif passed:
            result = "pass"
        else:
            result = "temperror" if temperror else "fail"
        return {
            "result": result,
            "policy": self.policy,
            "record_domain": self.domain,
            "adkim": self.adkim,
            "aspf": self.aspf,
        }


_NO_DMARC = _DMARCRecord(domain="", policy="")


def _dmarc_record(from_domain: str, resolver: Resolver) -> _DMARCRecord:
    """Discover the policy of the From domain, then of its organizational domain (RFC 7489 6.6.3)."""
    org = organizational_domain(from_domain)
    for domain in dict.fromkeys([from_domain, org]):
        try:
            texts = resolver.txt(f"_dmarc.{domain}")
        except DNSTempError:
            return _DMARCRecord(domain=domain, policy="", error="temperror")
        records = dmarc_records(texts)
        if len(records) > 1:
            return _NO_DMARC  # several records mean none, and no look at the organizational domain (6.6.3)
        if records:
            tags = record_tags(records[0])
            policy = tags.get("p", "")
            if domain != from_domain:
                policy = tags.get("sp", policy)
            return _DMARCRecord(
                domain=domain,
                policy=policy if policy in ("none", "quarantine", "reject") else "none",
                adkim="s" if tags.get("adkim") == "s" else "r",
                aspf="s" if tags.get("aspf") == "s" else "r",
            )
    return _NO_DMARC


def _aligned(identifier: str, from_domain: str, mode: str) -> bool:
    """Whether a DKIM d= or SPF domain aligns with the From domain (RFC 7489 3.1)."""
    if not identifier or not from_domain:
        return False
    if mode == "s":
        return identifier == from_domain
    return organizational_domain(identifier) == organizational_domain(from_domain)


# --- trusted relay (RFC 8601) -----------------------------------------------------------


_DMARC_COMMENT = re.compile(r"\bdmarc\s*=\s*[\w.-]+(?:\s*\(([^()]*)\))?", re.I)
_POLICY_IN_COMMENT = re.compile(r"\bp=(none|quarantine|reject)\b", re.I)


def _relay_verdict(headers: Message, from_domain: str, authserv_id: str) -> AuthVerdict | None:
    """The verdict of the topmost Authentication-Results of `authserv_id`; None when there is none.

    Headers of any other authserv-id are ignored: anyone upstream can write them.
    """
    if not authserv_id:
        return None
    wanted = authserv_id.strip().lower()
    for value in headers.get_all("Authentication-Results", []):
        text = re.sub(r"\r?\n[ \t]+", " ", str(value)).strip()
        match = re.match(r"[^\s;(]+", text)
        if not match or match.group().lower() != wanted:
            continue
        results: dict[str, Any] = {
            "from_domain": from_domain,
            "authentication_results": {"authserv_id": wanted, "header": text[:2000]},
        }
        try:
            parsed = authres.AuthenticationResultsHeader.parse_value(text)
        except Exception:  # an unreadable verdict from the relay counts as none
            reason = "unreadable Authentication-Results"
            return AuthVerdict(False, "", Method.NONE, reason, results=results)
        return _verdict_from_relay(parsed, text, from_domain, results)
    return None


def _verdict_from_relay(parsed: Any, text: str, from_domain: str, results: dict[str, Any]) -> AuthVerdict:
    clauses: dict[str, list[dict[str, str]]] = {}
    for clause in getattr(parsed, "results", []):
        method = getattr(clause, "method", "")
        if method in ("spf", "dkim", "dmarc"):
            clauses.setdefault(method, []).append(_clause(clause))
    # authres drops comments, where OpenDMARC and others write the policy: "dmarc=fail (p=reject)".
    for dmarc, comment in zip(clauses.get("dmarc", []), _DMARC_COMMENT.findall(text), strict=False):
        if not dmarc["policy"] and (match := _POLICY_IN_COMMENT.search(comment)):
            dmarc["policy"] = match.group(1).lower()
    results["authentication_results"].update(clauses)
    if not from_domain:
        return AuthVerdict(False, "", Method.NONE, "no single From address", results=results)
    relay = results["authentication_results"]["authserv_id"]
    if dmarc := next(iter(clauses.get("dmarc", [])), None):
        if dmarc["result"] == "pass" and dmarc["domain"] in ("", from_domain):
            return AuthVerdict(
                True, from_domain, Method.TRUSTED_RELAY, f"dmarc=pass ({relay})", results=results
            )
        if dmarc["result"] == "pass":
            reason = f"dmarc=pass for {dmarc['domain']}, not the From domain"
            return AuthVerdict(False, "", Method.NONE, reason, results=results)
        policy = dmarc["policy"]
        spoofing = dmarc["result"] == "fail" and policy in ("reject", "quarantine")
        reason = f"dmarc={dmarc['result']}" + (f" (p={policy})" if policy else "")
        return AuthVerdict(False, "", Method.NONE, reason, spoofing_suspected=spoofing, results=results)
    # No DMARC verdict: relaxed alignment of a passing DKIM or SPF identity.
    for method in ("dkim", "spf"):
        for clause in clauses.get(method, []):
            if clause["result"] == "pass" and _aligned(clause["domain"], from_domain, "r"):
                reason = f"{method}=pass ({clause['domain']}, aligned; {relay})"
                return AuthVerdict(True, from_domain, Method.TRUSTED_RELAY, reason, results=results)
    for method in ("dkim", "spf"):
        if clauses.get(method):
            return AuthVerdict(
                False, "", Method.NONE, f"{method}={clauses[method][0]['result']}", results=results
            )
    return AuthVerdict(False, "", Method.NONE, "dkim=none", results=results)


def _clause(clause: Any) -> dict[str, str]:
    properties = {f"{p.type}.{p.name}": str(p.value or "") for p in getattr(clause, "properties", [])}
    identity = (
        properties.get("header.from")
        or properties.get("header.d")
        or properties.get("header.i")
        or properties.get("smtp.mailfrom")
        or properties.get("smtp.helo")
        or ""
    )
    policy = properties.get("policy.dmarc", "")
    return {
        "result": str(clause.result).lower(),
        "domain": _domain_text(identity.rpartition("@")[2].encode()),
        "policy": policy.lower(),
    }


# --- reading the message ----------------------------------------------------------------


def _headers(raw: bytes) -> Message:
    # The header section only: the parser reads every line of what it is given, headers only or not,
    # and a 50 KB attachment cost it 2 ms (issue 18). Its first empty line ends the headers for the
    # parser as well, which may stop earlier (a bare CR line) but never later.
    ends = [end for end in (raw.find(b"\n\n"), raw.find(b"\n\r\n")) if end >= 0]
    if ends:
        end = min(ends)
        raw = raw[: end + (2 if raw[end + 1 : end + 2] == b"\n" else 3)]
    return BytesHeaderParser(policy=compat32).parsebytes(raw)


def _from_domain(headers: Message) -> str:
    """The domain of the message's one From address; "" for none or several (RFC 7489 6.6.1)."""
    values = headers.get_all("From", [])
    if len(values) != 1:
        return ""
    addresses = [address for _, address in email.utils.getaddresses([str(values[0])]) if address]
    if len(addresses) != 1 or "@" not in addresses[0]:
        return ""
    return _domain_text(addresses[0].rpartition("@")[2].encode("utf-8", "surrogateescape"))


def _domain_text(value: bytes) -> str:
    """A domain lower-cased, without the trailing dot, in its ASCII (IDNA) form."""
    text = value.decode("utf-8", "replace").strip().rstrip(".").lower()
    try:
        return text.encode("idna").decode("ascii")
    except UnicodeError:
        return text


def _ip(peer_ip: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not peer_ip:
        return None
    try:
        ip = ipaddress.ip_address(peer_ip)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped  # a dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d
    return ip
