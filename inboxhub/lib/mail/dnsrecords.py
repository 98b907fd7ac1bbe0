"""Reading DNS TXT policy records and organizational domains: one reading for DMARC and the custom-from check.

The public suffix list is loaded once per process, on first use (it takes
some 30 ms and a few MB).
"""

import functools
import re

from publicsuffixlist import PublicSuffixList

# ABNF literals are case-insensitive (RFC 5234 2.3): `V=DMARC1`, `v = DMARC1` and `V=SPF1` are records too.
_DMARC_VERSION = re.compile(r"^\s*v\s*=\s*DMARC1\s*(;|$)", re.IGNORECASE)
_SPF_VERSION = re.compile(r"^v=spf1( |$)", re.IGNORECASE)


def dmarc_records(texts: list[bytes]) -> list[str]:
    """The DMARC records among one name's TXT strings; more than one counts as none (RFC 7489 6.6.3)."""
    return _records(texts, _DMARC_VERSION)


def spf_record(texts: list[bytes]) -> str:
    """The SPF record among one name's TXT strings; "" when there is none, or several (RFC 7208 4.5)."""
    records = _records(texts, _SPF_VERSION)
    return records[0] if len(records) == 1 else ""


def _records(texts: list[bytes], version: re.Pattern) -> list[str]:
    decoded = (raw.decode("utf-8", "replace").strip() for raw in texts)
    return [text for text in decoded if version.match(text)]


def record_tags(record: str) -> dict[str, str]:
    """`v=DMARC1; p=Reject` → {"v": "dmarc1", "p": "reject"}; the first of a repeated tag wins."""
    tags: dict[str, str] = {}
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags.setdefault(name.strip().lower(), value.strip().lower())
    return tags


@functools.cache
def _suffix_list() -> PublicSuffixList:
    return PublicSuffixList()


def organizational_domain(domain: str) -> str:
    """The registrable domain (RFC 7489 3.2): `mail.example.co.uk` → `example.co.uk`."""
    return _suffix_list().privatesuffix(domain) or domain
