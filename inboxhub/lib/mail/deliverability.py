"""Can InboxHub send in the name of a custom from address? Its domain's DNS answers (C4).

The domain must accept mail (an MX record, or an A/AAAA record as the implicit MX of
RFC 5321 5.1); its SPF and DMARC records are read so the page can show them, with a
warning when DMARC would quarantine or reject mail InboxHub sends in its name because
SPF does not include `SENDING_SPF_INCLUDE`.

Every lookup goes through `inboxhub.lib.mail.dns` (bounded in time, TTL-cached): a DNS that
does not answer gives `DomainReport.temporary_error`, never a stuck request.
"""

from dataclasses import dataclass, field

from django.conf import settings

from inboxhub.lib.mail.dns import DNSTempError, Resolver, get_resolver, time_budget
from inboxhub.lib.mail.dnsrecords import dmarc_records, organizational_domain, record_tags, spf_record

DNS_BUDGET = 3.0  # seconds of DNS for one check, all lookups together
UNCHECKED_MESSAGE = "We could not check DNS for {domain} right now. Please try again in a minute."


@dataclass
class DomainReport:
    domain: str
    mail_hosts: list[str] = field(default_factory=list)  # MX hosts, or the domain itself (A/AAAA)
    null_mx: bool = False  # "MX 0 ." (RFC 7505): the domain says it never receives mail
    spf: str = ""  # the v=spf1 record, "" when none
    dmarc: str = ""  # the v=DMARC1 record, "" when none
    dmarc_domain: str = ""  # where it was found: the domain or its organizational domain
    dmarc_policy: str = ""  # none, quarantine, reject
    temporary_error: bool = False

    @property
    def accepts_mail(self) -> bool:
        return bool(self.mail_hosts) and not self.null_mx

    @property
    def refusal(self) -> str:
        """Why the address cannot be used, in the user's words; "" when it can."""
        if self.temporary_error:
            return UNCHECKED_MESSAGE.format(domain=self.domain)
        if self.null_mx:
            return (
                f"{self.domain} says it accepts no email (its MX record is empty), "
                "so it cannot be a from address."
            )
        if not self.mail_hosts:
            return (
                f"{self.domain} has no MX or A record in DNS, so replies to it could not be delivered. "
                "Check the spelling or use another address."
            )
        return ""

    @property
    def spf_includes_us(self) -> bool:
        include = settings.SENDING_SPF_INCLUDE.lower()
        terms = [term.lstrip("+?~") for term in self.spf.lower().split()]
        return bool(include) and f"include:{include}" in terms

    @property
    def dmarc_warning(self) -> str:
        """C4: a warning when DMARC would quarantine or reject mail sent in the domain's name."""
        if self.temporary_error or self.dmarc_policy not in ("quarantine", "reject") or self.spf_includes_us:
            return ""
        action = "rejected" if self.dmarc_policy == "reject" else "sent to spam"
        return (
            f"{self.dmarc_domain} has a DMARC policy of “{self.dmarc_policy}” and its SPF record does not "
            f"include {settings.SENDING_SPF_INCLUDE}: mail InboxHub sends from this address may be {action}. "
            f"Add “include:{settings.SENDING_SPF_INCLUDE}” to the SPF record of {self.domain}."
        )


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().rstrip(".").lower()


def check_domain(domain: str, *, resolver: Resolver | None = None) -> DomainReport:
    """Look up the mail hosts, SPF and DMARC of `domain` (C4)."""
    resolver = resolver or get_resolver()
    report = DomainReport(domain=domain)
    try:
        with time_budget(DNS_BUDGET):
            mx = sorted(resolver.query(domain, "MX"), key=lambda record: record.preference)
            if mx:
                report.null_mx = len(mx) == 1 and mx[0].exchange.to_text() == "."
                report.mail_hosts = [record.exchange.to_text().rstrip(".") for record in mx]
            elif resolver.query(domain, "A") or resolver.query(domain, "AAAA"):
                report.mail_hosts = [domain]
            report.spf = spf_record(resolver.txt(domain))
            for candidate in dict.fromkeys([domain, organizational_domain(domain)]):
                records = dmarc_records(resolver.txt(f"_dmarc.{candidate}"))
                if len(records) > 1:
                    break  # several records mean none, as a receiver reads them (RFC 7489 6.6.3)
                if records:
                    record = records[0]
                    tags = record_tags(record)
                    policy = tags.get("p", "none") if candidate == domain else tags.get("sp", tags.get("p"))
                    report.dmarc, report.dmarc_domain = record, candidate
                    report.dmarc_policy = policy if policy in ("none", "quarantine", "reject") else "none"
                    break
    except DNSTempError:
        report.temporary_error = True
    return report
