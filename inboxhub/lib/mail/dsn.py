"""Bounces: which message a delivery report is about, for whom delivery failed, and why (RFC 3464, RFC 6522).

`read_delivery_report(message, sender)` reads a message the parser has
already built (within its part limits) and returns None for anything that is
not a bounce. A standard report (`multipart/report` with a
`message/delivery-status` part: Postfix, Exim, Exchange, Gmail, Sendmail)
gives each recipient's action, status and diagnostic, and the Message-ID of
the returned message from its `message/rfc822` or `text/rfc822-headers` part.
A bounce written as prose only (old Exim, qmail: from `MAILER-DAEMON`, or
with `X-Failed-Recipients`) gives what its text plainly says, and nothing
when it says too little: an action is never guessed.
"""

import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import HeaderParser

FAILED = "failed"
DELAYED = "delayed"

BOUNCE_SENDERS = ("mailer-daemon", "postmaster")
_STATUS_PARTS = ("message/delivery-status", "message/global-delivery-status")
_ORIGINAL_MESSAGE_PARTS = ("message/rfc822", "message/global")
_ORIGINAL_HEADER_PARTS = ("text/rfc822-headers", "message/global-headers")
_ACTIONS = ("failed", "delayed", "delivered", "relayed", "expanded")
_MESSAGE_ID = re.compile(r"<([^<>\s]{1,990}@[^<>\s]{1,255})>")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
# An SMTP reply quoted in a bounce's prose: "550 5.1.1 …" or "550-5.1.1 …" anywhere, or a bare
# "554 Too many hops" at the start of a line.
_SMTP_REPLY = re.compile(r"\b([45]\d\d)[ -]#?([245]\.\d{1,3}\.\d{1,3})\b|^[ \t]*([45]\d\d)[ -]", re.MULTILINE)
_QUOTED_MESSAGE_ID = re.compile(r"^[ \t>]*Message-ID:[ \t]*(<[^<>\r\n]+>)", re.IGNORECASE | re.MULTILINE)
# A report's fields written into a bounce whose structure did not survive.
_STATUS_FIELD = re.compile(r"^Status:[ \t]*([245]\.\d{1,3}\.\d{1,3})\b", re.IGNORECASE | re.MULTILINE)
_FINAL_RECIPIENT_FIELD = re.compile(r"^Final-Recipient:[ \t]*([^\r\n]+)", re.IGNORECASE | re.MULTILINE)
_MAX_REASON = 500
_MAX_RECIPIENTS = 100
_MAX_PROSE = 200_000  # characters of a prose bounce searched for ids and replies

# RFC 3463's words for the subject and detail of the commonest codes, when a report gives no diagnostic.
_STATUS_WORDS = {
    "1.1": "the mailbox does not exist",
    "1.2": "the destination domain does not exist",
    "1.10": "the recipient address has no mail server",
    "2.1": "the mailbox is disabled",
    "2.2": "the mailbox is full",
    "2.3": "the message is too large for the mailbox",
    "3.4": "the message is too large",
    "4.1": "no answer from the receiving server",
    "4.4": "the receiving server could not be reached",
    "4.6": "the message was forwarded too many times",
    "4.7": "delivery took too long",
    "7.1": "delivery was refused by policy",
}


@dataclass(frozen=True)
class RecipientStatus:
    """What a report says about one recipient (RFC 3464 §2.3)."""

    recipient: str  # Final-Recipient, lower-cased; "" when the report names none
    action: str  # failed, delayed, delivered, relayed, expanded; "" when unknown
    status: str  # "5.1.1"; "" when unknown
    diagnostic: str = ""  # the remote server's words, "550 5.1.1 <x@y>: Recipient address rejected"
    original_recipient: str = ""

    @property
    def reason(self) -> str:
        """The status code and the diagnostic, for an agent: "550 5.1.1 user unknown (gone@example.com)"."""
        words = self.diagnostic
        if not words:
            detail = _STATUS_WORDS.get(self.status.partition(".")[2], "")
            words = f"{self.status} {detail}".strip() if self.status else "undeliverable"
        elif self.status and not _STATUS.search(words):
            reply_code = re.match(r"[45]\d\d ", words)
            words = f"{words[:4]}{self.status} {words[4:]}" if reply_code else f"{self.status} {words}"
        address = self.recipient or self.original_recipient
        if address and address not in words.lower():
            words = f"{words} ({address})"
        return words[:_MAX_REASON]


@dataclass(frozen=True)
class DeliveryReport:
    """A bounce: the recipients it reports on and the Message-IDs of the message it returns."""

    recipients: tuple[RecipientStatus, ...]
    # Without angle brackets, the returned message's own first; then the In-Reply-To of the report.
    original_message_ids: tuple[str, ...]
    # True when read from a message/delivery-status part; False when read from a bounce's prose.
    standard: bool
    reporting_mta: str = ""

    @property
    def failed(self) -> list[RecipientStatus]:
        return [r for r in self.recipients if r.action == FAILED]

    @property
    def delayed(self) -> list[RecipientStatus]:
        return [r for r in self.recipients if r.action == DELAYED]


def read_delivery_report(message: EmailMessage, sender: str = "") -> DeliveryReport | None:
    """The delivery report this message is, or None when it is none; never raises."""
    try:
        if message.get_content_type() == "multipart/report":
            report = _standard_report(message)
            if report is not None:
                return report
        if _looks_like_a_bounce(message, sender):
            return _prose_report(message)
    except Exception:  # a report the parser half read says nothing reliable: it is just mail
        return None
    return None


def is_bounce_sender(address: str) -> bool:
    """`MAILER-DAEMON@…` or `postmaster@…`: the senders of bounces (RFC 5321 §4.5.5)."""
    return (address or "").partition("@")[0].strip().lower() in BOUNCE_SENDERS


# --- a standard report: multipart/report with message/delivery-status (RFC 3464, RFC 6522) ---


def _standard_report(message: EmailMessage) -> DeliveryReport | None:
    parts = message.get_payload()
    if not isinstance(parts, list):
        return None
    groups: list[dict[str, str]] | None = None
    original_ids: list[str] = []
    for part in parts:
        content_type = part.get_content_type()
        if content_type in _STATUS_PARTS and groups is None:
            groups = _field_groups(part)
        elif content_type in _ORIGINAL_MESSAGE_PARTS or content_type in _ORIGINAL_HEADER_PARTS:
            original_ids += _returned_message_ids(part)
    if groups is None:
        return None
    per_message, per_recipient = (groups[0], groups[1:]) if groups else ({}, [])
    recipients = tuple(
        _recipient_status(fields) for fields in per_recipient[:_MAX_RECIPIENTS] if _names_a_recipient(fields)
    )
    return DeliveryReport(
        recipients=recipients,
        original_message_ids=_ordered_ids(original_ids, message),
        standard=True,
        reporting_mta=_after_type(per_message.get("reporting-mta", "")),
    )


def _field_groups(part: Message) -> list[dict[str, str]]:
    """The per-message group and the per-recipient groups of a delivery-status part, names lower-cased."""
    payload = part.get_payload()
    if isinstance(payload, list):  # message/delivery-status: the parser already split the groups
        return [{name.lower(): _one_line(value) for name, value in group.items()} for group in payload]
    # message/global-delivery-status, or a delivery-status part sent with a transfer encoding
    text = _decoded_text(part)
    groups = []
    for block in re.split(r"\r?\n[ \t]*\r?\n", text.strip()):
        if block.strip():
            fields = HeaderParser(policy=policy.compat32).parsestr(block.strip() + "\n", headersonly=True)
            groups.append({name.lower(): _one_line(value) for name, value in fields.items()})
    return groups


def _names_a_recipient(fields: dict[str, str]) -> bool:
    return any(name in fields for name in ("final-recipient", "original-recipient", "action"))


def _recipient_status(fields: dict[str, str]) -> RecipientStatus:
    action = fields.get("action", "").split("(")[0].strip().lower()
    status_field = fields.get("status", "")
    status = _STATUS.search(status_field)
    diagnostic = _one_reply(_after_type(fields.get("diagnostic-code", "")))
    if not diagnostic and status is not None:
        # "5.0.0 (recipient reached disk quota)": the comment is the only reason some servers give.
        comment = status_field[status.end() :].strip()
        diagnostic = f"{status.group(0)} {comment}" if comment else ""
    return RecipientStatus(
        recipient=_address(fields.get("final-recipient", "")),
        original_recipient=_address(fields.get("original-recipient", "")),
        action=action if action in _ACTIONS else "",
        status=status.group(0) if status else "",
        diagnostic=diagnostic[:_MAX_REASON],
    )


def _returned_message_ids(part: Message) -> list[str]:
    """The Message-ID of the message a report returns, whole or as its headers only."""
    if part.get_content_type() in _ORIGINAL_MESSAGE_PARTS:
        payload = part.get_payload()
        if isinstance(payload, list) and payload:
            return _ids(str(payload[0].get("message-id", "") or ""))[:1]
        return []
    headers = HeaderParser(policy=policy.compat32).parsestr(_decoded_text(part), headersonly=True)
    return _ids(str(headers.get("message-id", "") or ""))[:1]


# --- a bounce in prose: no delivery-status part ---


def _looks_like_a_bounce(message: EmailMessage, sender: str) -> bool:
    return is_bounce_sender(sender) or bool(_header(message, "x-failed-recipients"))


def _prose_report(message: EmailMessage) -> DeliveryReport:
    text = _prose(message)
    named = [a for a in _header(message, "x-failed-recipients").split(",") if a.strip()]
    named = named or _FINAL_RECIPIENT_FIELD.findall(text)
    failed_recipients = [_address(address) for address in named if _address(address)]
    quoted = _SMTP_REPLY.search(text)
    reply_code = (quoted.group(1) or quoted.group(3)) if quoted else ""
    status_field = _STATUS_FIELD.search(text)
    code = (quoted.group(2) if quoted else None) or (status_field.group(1) if status_field else "")
    diagnostic = _rest_of_line(text, quoted.start()) if quoted else ""
    # An action only when the mail says so: a failure it names, or the class of the reply it quotes.
    permanent = bool(failed_recipients) or reply_code.startswith("5")
    transient = not permanent and reply_code.startswith("4")
    action = FAILED if permanent else DELAYED if transient else ""
    recipients = tuple(
        RecipientStatus(recipient=address, action=action, status=code, diagnostic=diagnostic)
        for address in (failed_recipients or [""])[:_MAX_RECIPIENTS]
    )
    quoted_ids = [found for value in _QUOTED_MESSAGE_ID.findall(text) for found in _ids(value)]
    return DeliveryReport(
        recipients=recipients, original_message_ids=_ordered_ids(quoted_ids, message), standard=False
    )


def _prose(message: EmailMessage) -> str:
    texts = []
    for part in message.walk():
        content_type = part.get_content_type()
        # A multipart whose boundary is unreadable arrives as one text: read it as such.
        broken_multipart = part.is_multipart() is False and part.get_content_maintype() == "multipart"
        if content_type in ("text/plain", "text/rfc822-headers") or broken_multipart:
            texts.append(_decoded_text(part))
        elif content_type in _ORIGINAL_MESSAGE_PARTS:
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                texts.append(f"Message-ID: {payload[0].get('message-id', '')}")
        if sum(len(t) for t in texts) > _MAX_PROSE:
            break
    return "\n".join(texts)[:_MAX_PROSE]


def _one_reply(diagnostic: str) -> str:
    """A multi-line SMTP reply as one: "550-5.1.1 The … 550-5.1.1 double-checking …" loses the repeats."""
    first = re.match(r"([45]\d\d)[ -](?:([245]\.\d{1,3}\.\d{1,3}) )?", diagnostic)
    if first is None:
        return diagnostic
    code, status = first.group(1), first.group(2)
    repeat = rf"\s{code}[ -]" + (rf"(?:{re.escape(status)}\s+)?" if status else "")
    head = f"{code} {status} " if status else f"{code} "
    return head + " ".join(re.sub(repeat, " ", diagnostic[first.end() :]).split())


def _rest_of_line(text: str, position: int) -> str:
    end = text.find("\n", position)
    return _one_line(text[position : end if end != -1 else None])[:_MAX_REASON]


# --- small readers ---


def _ordered_ids(returned: list[str], message: EmailMessage) -> tuple[str, ...]:
    # The returned message's own id comes first; a report's In-Reply-To (Gmail sets it) only after.
    ids = returned + _ids(_header(message, "in-reply-to"))
    return tuple(dict.fromkeys(i for i in ids if i))


def _ids(value: str) -> list[str]:
    return [found.strip() for found in _MESSAGE_ID.findall(value or "")]


def _address(value: str) -> str:
    """`rfc822; gone@example.com` → `gone@example.com`."""
    address = _after_type(value).strip().strip("<>").strip().lower()
    return address if "@" in address and " " not in address else ""


def _after_type(value: str) -> str:
    """The value of a typed field without its type: `smtp; 550 5.1.1 …` → `550 5.1.1 …` (RFC 3464 §2.1.2)."""
    kind, separator, rest = value.partition(";")
    if separator and re.fullmatch(r"\s*[A-Za-z][A-Za-z0-9-]*\s*", kind):
        return rest.strip()
    return value.strip()


def _one_line(value) -> str:
    return " ".join(str(value or "").split())


def _header(message: Message, name: str) -> str:
    try:
        return _one_line(message.get(name, ""))
    except Exception:  # an unreadable header says nothing
        return ""


def _decoded_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        charset = part.get_content_charset() or "utf-8"
        try:
            return payload.decode(charset, "replace")
        except LookupError:
            return payload.decode("utf-8", "replace")
    raw = part.get_payload()
    return raw if isinstance(raw, str) else ""
