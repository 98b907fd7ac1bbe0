"""Reading DNS TXT policy records and organizational domains, for DMARC and the custom-from check.

The public suffix list is loaded once per process, on first use (it takes
some 30 ms and a few MB).
"""

import functools

from publicsuffixlist import PublicSuffixList


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
