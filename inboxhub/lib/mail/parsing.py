"""Read a raw message into what the pipeline needs: one module, one entry point.

`parse_message(raw)` never raises on bad MIME; it returns best-effort fields
and lists what it could not read in `defects`. Every string it returns can be
stored in PostgreSQL text and JSON: no NUL, no lone surrogate (`storable`).
"""

import codecs
import dataclasses
import functools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from email import errors, policy
from email.header import decode_header
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import EmailPolicy
from html import unescape

import nh3

from inboxhub.lib.html_nesting import parse_cost_refusal
from inboxhub.lib.mail import forwarding
from inboxhub.lib.mail.automated import automated_reason
from inboxhub.lib.mail.dsn import DeliveryReport, read_delivery_report

MAX_PARTS = 1000
MAX_DEPTH = 50
MAX_FILENAME_LENGTH = 200
# Bounces and digests carry messages/rfc822 parts that nobody forwarded.
_NOT_FORWARDS = ("multipart/report", "multipart/digest")
# Bounces that are not multipart/report, named as their software signs them.
_DELIVERY_SYSTEM = re.compile(r"\bmail delivery (?:subsystem|system)\b|\bmailer-daemon\b", re.IGNORECASE)


@dataclass(frozen=True)
class Address:
    name: str
    email: str  # lower-cased addr-spec; "" when none could be read safely


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str  # NFKC-normalised, control/format characters stripped, no path parts
    content_type: str
    payload: bytes
    content_id: str = ""
    inline: bool = False


@dataclass(frozen=True)
class ForwardedOriginal:
    """The original message inside a forward (G6)."""

    client: str  # "gmail", "outlook", "apple_mail", "thunderbird", "yahoo", "rfc822", ...
    sender: Address
    subject: str
    date: datetime | None
    cc: list[Address]
    text: str
    html: str = ""
    to: list[Address] = field(default_factory=list)
    date_text: str = ""  # the date as the forward block wrote it; "" for rfc822


@dataclass(frozen=True)
class ParsedMessage:
    message_id: str  # without angle brackets; "" when missing
    in_reply_to: list[str]
    references: list[str]
    subject: str
    sender: Address  # from the From header only, never Reply-To
    reply_to: list[Address]
    to: list[Address]
    cc: list[Address]
    date: datetime | None
    text: str  # the full text body (HTML converted to text when there is no text part)
    html: str  # raw, unsanitized HTML body; the caller sanitizes
    attachments: list[ParsedAttachment] = field(default_factory=list)
    forwarded: ForwardedOriginal | None = None
    text_without_forward_header: str = ""  # G7 `text`
    defects: list[str] = field(default_factory=list)
    # Why a machine sent it (a bounce, an auto-reply, list mail), or "": such mail starts nothing automatic.
    automated: str = ""
    # What a bounce reports (RFC 3464), or None: which message failed, for whom, why.
    delivery_report: DeliveryReport | None = None


@dataclass
class _Body:
    texts: list[str] = field(default_factory=list)
    htmls: list[str] = field(default_factory=list)
    attachments: list[ParsedAttachment] = field(default_factory=list)
    attached_messages: list[EmailMessage] = field(default_factory=list)


def parse_message(raw: bytes) -> ParsedMessage:
    """Read a raw message; never raises, lists what it could not read in `defects` (G3, G6)."""
    defects: list[str] = []
    message = _parse_bytes(raw, defects)
    return storable(_read_message(message, defects, nested=False))


# What PostgreSQL text and JSON cannot hold: NUL, and the lone surrogates Python's decoders leave for
# bytes they could not read (an encoded word of an unknown charset, an undecodable 8-bit header).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]+")
_ESCAPED_BYTES = re.compile("[\udc80-\udcff]+")


def storable_text(value: str) -> str:
    """The text PostgreSQL can store: undecoded bytes read as UTF-8 or Windows-1252, NUL and any other
    lone surrogate as U+FFFD (G5). A message that cannot be stored as sent is stored as readable."""
    if _is_storable(value):
        return value
    value = _ESCAPED_BYTES.sub(
        lambda run: _part_text(run.group().encode("ascii", "surrogateescape"), None), value
    )
    return _UNSTORABLE.sub(lambda run: "\ufffd" * len(run.group()), value)


def _is_storable(value: str) -> bool:
    # Not the regular expression: it reads a body at about 10 ns a character, these at memchr's pace.
    if "\x00" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a surrogate
        return False
    return True


def storable(value):
    """`value` with every string in it made storable (`storable_text`): through dataclasses, lists,
    tuples and dicts; other values (bytes, dates, enums) as they are."""
    if type(value) is str:
        return storable_text(value)
    if type(value) in (list, tuple):
        return type(value)(storable(item) for item in value)
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: storable(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **fields)
    return value


def inspect_message(parsed: ParsedMessage) -> dict:
    """What `manage.py inspect_email` prints (G7)."""
    original = parsed.forwarded
    if original is None:
        return {
            "is_forwarded": False,
            "original_sender": None,
            "subject": parsed.subject,
            "cc": [address.email for address in parsed.cc],
            "text": parsed.text,
            "forwarded_by": None,
        }
    return {
        "is_forwarded": True,
        "original_sender": {"name": original.sender.name, "email": original.sender.email},
        "subject": original.subject,
        "cc": [address.email for address in original.cc],
        "text": parsed.text_without_forward_header,
        "forwarded_by": parsed.sender.email or None,
    }


# --- header objects, each value read once ---

# Header values at most this long are kept once read: the Content-Type, -Disposition and
# -Transfer-Encoding values that every message repeats. Longer ones (References, a long subject) are
# a message's own and read again when asked twice.
_CACHED_HEADER_CHARS = 256


@functools.lru_cache(maxsize=512)
def _cached_header(name: str, value: str):
    return policy.default.header_factory(name, value)


def _header_object(name: str, value: str):
    """`policy.default`'s header object for a value: the same immutable object for the same value.

    The standard library parses a header anew each time it is read, and a message's Content-Type is
    read a dozen times while its parts are walked: that was most of the time parsing took (issue 18).
    """
    if len(value) <= _CACHED_HEADER_CHARS:
        return _cached_header(name, value)
    return policy.default.header_factory(name, value)


class _ReadingPolicy(EmailPolicy):
    """`policy.default`, whose header objects come from `_header_object`."""

    def header_fetch_parse(self, name, value):
        if hasattr(value, "name"):
            return value
        # As EmailPolicy does: every CR and LF out (unfolded), no other line break touched.
        return _header_object(name, value.replace("\r", "").replace("\n", ""))


_READING = _ReadingPolicy()


# --- bytes to a message tree, within the MIME bomb limits (B5) ---

_BOUNDARY_PARAM = re.compile(rb'boundary\s*=\s*"?([^";\r\n]+)', re.IGNORECASE)
_DELIMITER_LINE = re.compile(rb"^--([^\r\n]*)", re.MULTILINE)
_CONTAINER_TYPE = re.compile(rb"^content-type:[ \t]*(?:multipart|message)/", re.IGNORECASE | re.MULTILINE)


def _parse_bytes(raw: bytes, defects: list[str]) -> EmailMessage:
    raw = _within_part_limit(raw, defects)
    try:
        return BytesParser(policy=_READING).parsebytes(raw)
    except RecursionError:
        defects.append(f"parts nested deeper than {MAX_DEPTH} levels; the deeper parts were not read")
        raw = _cut_at_container(raw, MAX_DEPTH)
    except Exception as error:
        defects.append(f"message structure unreadable ({type(error).__name__}); headers only")
        return _headers_only(raw, defects)
    try:
        return BytesParser(policy=_READING).parsebytes(raw)
    except Exception as error:
        defects.append(f"message structure unreadable ({type(error).__name__}); headers only")
        return _headers_only(raw, defects)


def _headers_only(raw: bytes, defects: list[str]) -> EmailMessage:
    try:
        return BytesParser(policy=_READING).parsebytes(raw, headersonly=True)
    except Exception:
        defects.append("headers unreadable")
        return EmailMessage()


def _within_part_limit(raw: bytes, defects: list[str]) -> bytes:
    """Cut the raw message before its (MAX_PARTS + 1)th part: the parser is slow on thousands."""
    boundaries = {boundary.strip() for boundary in _BOUNDARY_PARAM.findall(raw)}
    if not boundaries:
        return raw
    parts = 0
    for line in _DELIMITER_LINE.finditer(raw):
        if line.group(1).rstrip() in boundaries:
            parts += 1
            if parts > MAX_PARTS:
                defects.append(f"more than {MAX_PARTS} parts; the rest was not read")
                return raw[: line.start()]
    return raw


def _cut_at_container(raw: bytes, limit: int) -> bytes:
    for count, match in enumerate(_CONTAINER_TYPE.finditer(raw), start=1):
        if count >= limit:
            return raw[: match.start()]
    return raw


def _walk(message: EmailMessage, defects: list[str]) -> Iterator[tuple[EmailMessage, int]]:
    """Yield the leaf parts and their depth, stopping at MAX_PARTS parts or MAX_DEPTH levels."""
    stack = [(message, 0)]
    seen = 0
    while stack:
        part, depth = stack.pop()
        seen += 1
        if seen > MAX_PARTS:
            defects.append(f"more than {MAX_PARTS} parts; the rest was not read")
            return
        defects.extend(type(defect).__name__ for defect in part.defects)
        # Only a container's payload: a leaf's get_payload() decodes, and raises on a charset holding NUL.
        children = part.get_payload() if part.is_multipart() else None
        if part.get_content_maintype() == "multipart" and isinstance(children, list):
            if depth >= MAX_DEPTH:
                defects.append(f"parts nested deeper than {MAX_DEPTH} levels; the deeper parts were not read")
                return
            stack.extend((child, depth + 1) for child in reversed(children))
        else:
            yield part, depth


# --- one message (or an attached one) into a ParsedMessage ---


def _read_message(message: EmailMessage, defects: list[str], *, nested: bool) -> ParsedMessage:
    body = _read_body(message, defects)
    text = "\n\n".join(t for t in body.texts if t.strip())
    html = "\n".join(body.htmls)
    if not text.strip() and html:
        text = html_to_text(html)
    subject = _header_text(message, "subject", defects)
    date = _date(message, defects)
    forwarded, text_without_forward_header = None, text
    sender = _sender(message, defects)
    if message.get_content_type() in _NOT_FORWARDS:
        body.attached_messages.clear()
    elif _DELIVERY_SYSTEM.search(sender.name):
        # A bounce that is not multipart/report returns the failed message: nobody forwarded it.
        defects.extend(_attached_defects(body.attached_messages))
        body.attached_messages.clear()
    if not nested:
        forwarded, text_without_forward_header = _forward(
            body, text=text, html=html, subject=subject, date=date, defects=defects
        )
    return ParsedMessage(
        message_id=_first_id(_raw_header(message, "message-id", defects)),
        in_reply_to=_ids(_raw_header(message, "in-reply-to", defects)),
        references=_ids(_raw_header(message, "references", defects)),
        subject=subject,
        sender=sender,
        reply_to=_address_list(message, "reply-to", defects),
        to=_address_list(message, "to", defects),
        cc=_address_list(message, "cc", defects),
        date=date,
        text=text,
        html=html,
        attachments=body.attachments,
        forwarded=forwarded,
        text_without_forward_header=text_without_forward_header,
        defects=list(dict.fromkeys(defects)),
        automated="" if nested else automated_reason(message, sender.email),
        delivery_report=None if nested else read_delivery_report(message, sender.email),
    )


def _attached_defects(messages: list[EmailMessage]) -> list[str]:
    parts = (part for message in messages for part in message.walk())
    return [f"attached message: {type(defect).__name__}" for part in parts for defect in part.defects]


def _read_body(message: EmailMessage, defects: list[str]) -> _Body:
    body = _Body()
    for part, depth in _walk(message, defects):
        content_type = part.get_content_type()
        filename = _raw_filename(part, defects)
        disposition = part.get_content_disposition()
        if content_type == "message/rfc822" and part.is_multipart():
            inner = part.get_payload(0)
            if depth <= 1:
                body.attached_messages.append(inner)
            body.attachments.append(_attachment(part, filename or _eml_name(inner, defects), defects))
        elif _is_body_text(content_type, filename, disposition):
            decoded = _decode_text(part, defects)
            (body.htmls if content_type == "text/html" else body.texts).append(decoded)
        elif part.get_content_maintype() == "multipart":
            defects.append(f"{content_type} part without readable parts; read as text")
            body.texts.append(_decode_text(part, defects))
        else:
            body.attachments.append(_attachment(part, filename, defects))
    return body


def _is_body_text(content_type: str, filename: str, disposition: str | None) -> bool:
    return content_type in ("text/plain", "text/html") and not filename and disposition != "attachment"


def _forward(
    body: _Body, *, text: str, html: str, subject: str, date: datetime | None, defects: list[str]
) -> tuple[ForwardedOriginal | None, str]:
    default_tz = date.tzinfo if date else UTC
    inline = forwarding.find_inline_forward(text, subject=subject, html=html)
    if inline is not None:
        return _from_inline(inline, default_tz, defects), inline.text_without_forward_header
    if body.attached_messages:
        inner_defects: list[str] = []
        attached = body.attached_messages[0]
        inner = _read_message(attached, inner_defects, nested=True)
        defects.extend(f"attached message: {defect}" for defect in inner_defects)
        sender = _forwarded_sender(inner.sender, _raw_header(attached, "from", defects))
        original = ForwardedOriginal(
            client="rfc822",
            sender=sender,
            subject=inner.subject,
            date=inner.date,
            cc=inner.cc,
            text=inner.text,
            html=inner.html,
            to=inner.to,
        )
        return original, "\n\n".join(t for t in (text.strip(), inner.text.strip()) if t)
    return None, text


def _from_inline(
    inline: forwarding.InlineForward, default_tz: tzinfo, defects: list[str]
) -> ForwardedOriginal:
    if "@" not in inline.from_header:
        # Exchange and some web mailers write the name alone: keep the name.
        sender = Address(name=inline.from_header.strip().strip("\"'*").strip(), email="")
    else:
        senders = _addresses_from_text("from", inline.from_header, defects)
        sender = senders[0] if len(senders) == 1 and senders[0].email else _clear_sender(inline.from_header)
        if not sender.email:
            defects.append("forwarded sender could not be read unambiguously")
    return ForwardedOriginal(
        client=inline.client,
        sender=sender,
        subject=inline.subject,
        date=forwarding.parse_forward_date(inline.date_text, default_tz=default_tz),
        cc=[a for a in _addresses_from_text("cc", inline.cc_header, defects) if a.email],
        text=inline.text,
        html=inline.html,
        to=[a for a in _addresses_from_text("to", inline.to_header, defects) if a.email],
        date_text=inline.date_text,
    )


# A display name and one angle address, the only "@" of the value: no other address to be taken for it.
_CLEAR_SENDER = re.compile(r"^\s*(?P<name>[^<>@]*?)\s*<(?P<email>[^\s<>@]+@[^\s<>@]+)>\s*$")


def _clear_sender(value: str) -> Address:
    """The sender of a From whose display name has harmless flaws (a stray quote, a broken encoded
    word), when its one address stands clear; an empty Address otherwise."""
    match = _CLEAR_SENDER.match(value)
    if not match or not _PLAIN_ADDRESS.fullmatch(match.group("email")):
        return Address(name="", email="")
    return Address(name=_loose_name(match.group("name")), email=match.group("email").lower())


def _forwarded_sender(sender: Address, raw_from: str) -> Address:
    """The attached original's sender: a name the parser left encoded or undecodable is read once more,
    a clear address kept however flawed the name, an old "addr (Name)" comment taken for the name."""
    if not sender.email:
        return _clear_sender(raw_from)
    if "=?" in sender.name or _SURROGATES.search(sender.name):
        cleared = _clear_sender(raw_from)
        return Address(name=cleared.name or _loose_name(sender.name), email=sender.email)
    comment = _ADDRESS_COMMENT.match(raw_from)
    if not sender.name and comment and comment.group("email").lower() == sender.email:
        return Address(name=" ".join(comment.group("name").split()), email=sender.email)
    return sender


_ADDRESS_COMMENT = re.compile(r"^\s*(?P<email>[^\s<>()@]+@[^\s<>()@]+)\s*\((?P<name>[^()]+)\)\s*$")


def _loose_name(name: str) -> str:
    """A display name read as a person would: encoded words decoded even when unterminated or of an
    unknown charset (as UTF-8, else Windows-1252), quotes dropped."""
    name = name.strip().strip('"')
    if "=?" in name and not re.search(r"\?=\s*$", name):
        name += "?="
    try:
        parts = decode_header(name)
    except Exception:
        parts = [(name, None)]
    decoded = "".join(_part_text(part, charset) for part, charset in parts)
    return " ".join(decoded.replace('"', "").split())


def _part_text(part: bytes | str, charset: str | None) -> str:
    if isinstance(part, str):
        part = part.encode("utf-8", "surrogateescape")
    for codec in (charset, "utf-8"):
        try:
            return part.decode(codec or "utf-8")
        except (LookupError, UnicodeDecodeError):
            continue
    return part.decode("cp1252", errors="replace")


# --- headers ---

_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
_PLAIN_ADDRESS = re.compile(r"[^\s@<>()\[\]\\,;:\"]+@[^\s@<>()\[\]\\,;:\"]+")


def _raw_header(message: EmailMessage, name: str, defects: list[str]) -> str:
    """The first `name` header, unfolded, with raw 8-bit bytes read as UTF-8 or Windows-1252 (B2)."""
    for key, value in message.raw_items():
        if key.lower() == name:
            return re.sub(r"\r?\n", "", _decode_8bit(value, name, defects)).strip()
    return ""


def _decode_8bit(value: str, name: str, defects: list[str]) -> str:
    if not any("\udc80" <= char <= "\udcff" for char in value):
        return value
    raw = value.encode("ascii", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        defects.append(f"8-bit {name} header is not UTF-8; read as Windows-1252")
        return raw.decode("cp1252", errors="replace")


def _parsed_header(name: str, value: str, defects: list[str]):
    try:
        return _header_object(name, value)
    except Exception:
        defects.append(f"{name} header unreadable")
        return None


def _header_text(message: EmailMessage, name: str, defects: list[str]) -> str:
    value = _raw_header(message, name, defects)
    header = _parsed_header(name, value, defects) if value else None
    return str(header) if header is not None else value


def _date(message: EmailMessage, defects: list[str]) -> datetime | None:
    value = _raw_header(message, "date", defects)
    header = _parsed_header("date", value, defects) if value else None
    moment = getattr(header, "datetime", None)
    if value and moment is None:
        defects.append("Date header unreadable")
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _first_id(value: str) -> str:
    found = _MESSAGE_ID.search(value)
    return found.group(1) if found else value.strip().strip("<>").strip()


def _ids(value: str) -> list[str]:
    return _MESSAGE_ID.findall(value) or value.split()


def _sender(message: EmailMessage, defects: list[str]) -> Address:
    senders = _addresses_from_text("from", _raw_header(message, "from", defects), defects)
    if len(senders) == 1:
        return senders[0]
    if senders:
        defects.append("From header holds several addresses; sender not chosen")
    return Address(name="", email="")


def _address_list(message: EmailMessage, name: str, defects: list[str]) -> list[Address]:
    addresses = _addresses_from_text(name, _raw_header(message, name, defects), defects)
    return [address for address in addresses if address.email]


def _addresses_from_text(name: str, value: str, defects: list[str]) -> list[Address]:
    """Read an address list; one that parses with defects keeps no email (CVE-2023-27043)."""
    header = _parsed_header(name, value, defects) if value.strip() else None
    if header is None:
        return []
    try:
        found = [(mailbox.display_name, mailbox.addr_spec) for mailbox in header.addresses]
    except Exception:
        defects.append(f"{name} addresses unreadable")
        return []
    ambiguous = any(isinstance(defect, errors.InvalidHeaderDefect) for defect in header.defects)
    if ambiguous or not all(_PLAIN_ADDRESS.fullmatch(email) for _, email in found):
        defects.append(f"{name} address could not be read unambiguously: {value[:200]!r}")
        return [Address(name="", email="")]
    return [Address(name=display_name, email=email.lower()) for display_name, email in found]


# --- text and attachments ---


def _decode_text(part: EmailMessage, defects: list[str]) -> str:
    try:
        payload = part.get_payload(decode=True)
        charset = part.get_content_charset() or "us-ascii"
    except Exception as error:
        defects.append(f"part unreadable ({type(error).__name__})")
        return ""
    defects.extend(type(defect).__name__ for defect in part.defects)
    if not isinstance(payload, bytes):
        return ""
    return decode_bytes(payload, charset, defects).replace("\r\n", "\n")


def decode_bytes(payload: bytes, charset: str, defects: list[str]) -> str:
    """Decode text as declared; an unknown or wrong charset falls back to UTF-8, then Windows-1252."""
    try:
        codec = codecs.lookup(charset).name
    except (LookupError, ValueError):  # ValueError: a NUL in the name
        defects.append(f"unknown charset {charset[:40]!r}")
        codec = "utf-8"
    if codec == "ascii":
        codec = "utf-8"  # mail declared as ASCII often carries UTF-8
    for candidate in dict.fromkeys((codec, "utf-8")):
        try:
            return payload.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
    defects.append(f"text is not valid {charset[:40]}; read as Windows-1252")
    return payload.decode("cp1252", errors="replace")


def _raw_filename(part: EmailMessage, defects: list[str]) -> str:
    try:
        return part.get_filename() or ""
    except Exception:
        defects.append("attachment filename unreadable")
        return ""


def _eml_name(inner: EmailMessage, defects: list[str]) -> str:
    return f"{_header_text(inner, 'subject', defects) or 'message'}.eml"


def _attachment(part: EmailMessage, filename: str, defects: list[str]) -> ParsedAttachment:
    content_id = _first_id(_raw_header(part, "content-id", defects))
    disposition = part.get_content_disposition()
    return ParsedAttachment(
        filename=clean_filename(filename),
        content_type=part.get_content_type(),
        payload=_payload_bytes(part, defects),
        content_id=content_id,
        inline=disposition == "inline" or (bool(content_id) and disposition != "attachment"),
    )


def _payload_bytes(part: EmailMessage, defects: list[str]) -> bytes:
    try:
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            return payload
        inner = part.get_payload()
        if isinstance(inner, list):
            return b"".join(message.as_bytes() for message in inner)
        return str(inner or "").encode("utf-8", "surrogateescape")
    except Exception as error:
        defects.append(f"attachment unreadable ({type(error).__name__})")
        return b""


def clean_filename(name: str) -> str:
    """A display name for an attachment that is safe to show and to suggest on download (B7).

    Control and format characters go first, so that a hidden U+200B cannot pass a check
    and vanish afterwards (CVE-2026-28289). Storage never uses this name as a key.
    """
    name = unicodedata.normalize("NFKC", name)
    name = "".join(char for char in name if unicodedata.category(char) not in ("Cc", "Cf"))
    name = re.split(r"[/\\]", name)[-1]
    name = re.sub(r"^[A-Za-z]:", "", name).strip()
    if not name.strip("."):
        return "attachment"
    if len(name) > MAX_FILENAME_LENGTH:
        stem, dot, extension = name.rpartition(".")
        if dot and stem and len(extension) <= 20:
            name = stem[: MAX_FILENAME_LENGTH - len(extension) - 1] + "." + extension
        else:
            name = name[:MAX_FILENAME_LENGTH]
    return name


_TEXT_BLOCKS = frozenset(
    ("address", "article", "blockquote", "br", "div", "dl", "dt", "dd", "hr", "li", "ol", "p", "pre")
    + ("section", "table", "tr", "ul", "h1", "h2", "h3", "h4", "h5", "h6")
)
_TEXT_HIDDEN = frozenset(("script", "style", "head", "title", "template"))
# nh3's output: the kept tags bare, and every `<` of the text escaped as `&lt;`.
_KEPT_TAG = re.compile(r"<(/?)([a-z0-9]+)>")
_SURROGATES = re.compile("[\ud800-\udfff]")


def html_to_text(html: str) -> str:
    """A plain reading of an HTML body, for messages that have no text part."""
    if parse_cost_refusal(html):
        # No tree for crafted markup: tags out, lines as sent. `<` ends a tag too, so that each
        # character is read at most twice however many tags are left open.
        text = unescape(re.sub(r"<[^<>]*>", " ", html))
    else:
        # html5ever (in nh3) reads the markup as a browser would. The standard library's HTMLParser
        # took minutes over a few hundred kilobytes of unclosed tags (CVE-2025-6069).
        kept = nh3.clean(
            _SURROGATES.sub("\ufffd", html),
            tags=set(_TEXT_BLOCKS | {"td"}),
            clean_content_tags=set(_TEXT_HIDDEN),
            attributes={},
            strip_comments=True,
            link_rel=None,
        )
        text = unescape(_KEPT_TAG.sub(lambda tag: " " if tag.group(2) == "td" else "\n", kept))
    lines = [" ".join(line.split()) for line in text.replace("\xa0", " ").splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
