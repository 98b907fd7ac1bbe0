"""Find the original message inside an inline forward (G6), in pure text functions.

Each mail client writes its forward block its own way: a separator line, then a
small header block (From, Date, Subject, To, Cc) in the forwarder's language,
then the original body. `find_inline_forward` recognises the blocks of Gmail,
Outlook desktop and web, Apple Mail, Thunderbird and Yahoo in English, Swedish,
German, French and Spanish, and falls back to `email-forward-parser` for other
clients and languages. Attached `message/rfc822` forwards are read by parsing.py.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime

from emailforwardparser import forward_parser

# Bounds that keep a hostile text of many "From:" lines linear.
MAX_CANDIDATES = 20
HEADER_WINDOW = 4_000
LIBRARY_TEXT_LIMIT = 20_000
LIBRARY_LINE_LIMIT = 500


@dataclass(frozen=True)
class InlineForward:
    client: str  # "gmail", "outlook", "outlook_web", "apple_mail", "thunderbird", "yahoo" or "generic"
    from_header: str  # the original From as written, e.g. "Jane Doe <jane@example.com>"
    to_header: str
    cc_header: str
    subject: str
    date_text: str
    text: str  # the original body
    html: str  # the original HTML body when it could be cut out cheaply, else ""
    text_without_forward_header: str  # the forwarder's note and the original body, without the block


# Field labels of the forward header block, lower-cased, per field.
FIELD_LABELS = {
    "from": {"from", "von", "från", "de", "expéditeur", "remitente"},
    "date": {"date", "sent", "datum", "gesendet", "skickat", "envoyé", "enviado", "enviado el", "fecha"},
    "to": {"to", "an", "till", "à", "a", "para", "pour", "destinataire"},
    "cc": {"cc", "kopie (cc)", "kopie", "kopia", "copie à", "copie", "cc."},
    "subject": {"subject", "betreff", "ämne", "objet", "sujet", "asunto"},
    "reply_to": {"reply-to", "antwort an", "svara till", "répondre à", "responder a"},
}
_LABEL_TO_FIELD = {label: name for name, labels in FIELD_LABELS.items() for label in labels}
_HEADER_LINE = re.compile(r"^\s*\*?(?P<label>[^\W\d_][\w ().-]{0,19}?)\*?\s*[:：]\*?[ \t\xa0]*(?P<value>.*)$")

_FORWARD_PHRASES = (
    "forwarded message",
    "weitergeleitete nachricht",
    "vidarebefordrat meddelande",
    "vidarebefordrat mejl",
    "message transféré",
    "message transmis",
    "mensaje reenviado",
)
_DASHED_SEPARATOR = re.compile(
    r"^[ \t]*(?P<dashes>-{4,})[ \t]*(?:" + "|".join(_FORWARD_PHRASES) + r")[ \t]*-{4,}[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_APPLE_SEPARATOR = re.compile(
    r"^[ \t]*(?:begin forwarded message|anfang der weitergeleiteten (?:nachricht|e-mail)"
    r"|vidarebefordrat mejl|början på vidarebefordrat meddelande|début du message réexpédié"
    r"|début du message transféré|inicio del mensaje reenviado|comienzo del mensaje reenviado)[ \t]*:[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
# Outlook writes these above replies too, so they count only with a forward subject prefix.
_OUTLOOK_SEPARATOR = re.compile(
    r"^[ \t]*-{3,}[ \t]*(?:original message|ursprüngliche nachricht|ursprungligt meddelande"
    r"|message d'origine|mensaje original)[ \t]*-{3,}[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_OUTLOOK_WEB_SEPARATOR = re.compile(r"^[ \t]*_{10,}[ \t]*$", re.MULTILINE)
_BARE_FROM_LINE = re.compile(
    r"^[ \t]*\*?(?:from|von|från|de|expéditeur)\*?[ \t\xa0]*:", re.IGNORECASE | re.MULTILINE
)

# A reply's attribution line ("On Mon, Jane wrote:"): a forward block quoted below it is a reply.
_REPLY_ATTRIBUTION = re.compile(
    r"^[^\n>]*(?:\bwrote|\bschrieb|\bskrev|a écrit|escribió)[ \t]*:[ \t]*$", re.IGNORECASE | re.MULTILINE
)
# Prefixes of forwarded subjects, after [tags] only: "RE: FW:" is a reply to a forward.
_FORWARD_SUBJECT = re.compile(
    r"^\s*(?:\[[^\]]*\]\s*)*(?:fwd?|fw|wg|vb|vs|tr|rv|enc|weiterl)\s*:",
    re.IGNORECASE,
)


def has_forward_prefix(subject: str) -> bool:
    """Whether the subject says "forwarded" (Fwd:, FW:, WG:, VB:, TR:, RV:, ...); never enough alone."""
    return bool(_FORWARD_SUBJECT.match(subject))


def find_inline_forward(text: str, *, subject: str, html: str = "") -> InlineForward | None:
    """The inline forward block in `text`, or None when the message is not an inline forward."""
    text = text.replace("\r\n", "\n")
    for start, end, client in _candidate_blocks(text, subject=subject, html=html):
        if _is_quoted_reply_above(text, start):
            return None
        forward = _read_block(text, start, end, client, html=html)
        if forward is not None:
            return forward
    return _forward_by_library(text, subject=subject, html=html)


def _candidate_blocks(text: str, *, subject: str, html: str) -> list[tuple[int, int, str]]:
    """(start of separator, end of separator, client) for each place a forward block may begin."""
    found = [
        (m.start(), m.end(), _dashed_client(m.group("dashes"), html))
        for m in _DASHED_SEPARATOR.finditer(text)
    ]
    found += [(m.start(), m.end(), "apple_mail") for m in _APPLE_SEPARATOR.finditer(text)]
    if has_forward_prefix(subject):
        found += [(m.start(), m.end(), "outlook") for m in _OUTLOOK_SEPARATOR.finditer(text)]
        found += [(m.start(), m.end(), "outlook_web") for m in _OUTLOOK_WEB_SEPARATOR.finditer(text)]
        found += [(m.start(), m.start(), "outlook") for m in _BARE_FROM_LINE.finditer(text)]
    return sorted(found)[:MAX_CANDIDATES]


def _dashed_client(dashes: str, html: str) -> str:
    if "gmail_attr" in html or "gmail_quote" in html or len(dashes) >= 9:
        return "gmail"
    if "moz-forward-container" in html or len(dashes) == 8:
        return "thunderbird"
    return "yahoo"


def _is_quoted_reply_above(text: str, start: int) -> bool:
    return _REPLY_ATTRIBUTION.search(text, 0, start) is not None


def _read_block(text: str, start: int, end: int, client: str, *, html: str) -> InlineForward | None:
    window = text[end : end + HEADER_WINDOW].split("\n")
    quoted = _first_content_line(window).startswith(">")
    if quoted:
        window = [_unquote(line) for line in window]
    fields, body_start = _header_fields(window)
    if "from" not in fields or not ({"subject", "date"} & fields.keys()):
        return None
    body_lines = text[end:].split("\n")[body_start:]
    body = "\n".join(_unquote(line) for line in body_lines) if quoted else "\n".join(body_lines)
    note = text[:start].strip()
    return InlineForward(
        client=_client_from_html(client, html),
        from_header=_address_text(fields["from"]),
        to_header=_address_text(fields.get("to", "")),
        cc_header=_address_text(fields.get("cc", "")),
        subject=fields.get("subject", "").strip(),
        date_text=fields.get("date", "").strip(),
        text=body.strip(),
        html=_original_html(html),
        text_without_forward_header="\n\n".join(part for part in (note, body.strip()) if part),
    )


def _client_from_html(client: str, html: str) -> str:
    if client == "outlook" and "divRplyFwdMsg" in html:
        return "outlook_web"
    return client


def _first_content_line(lines: list[str]) -> str:
    return next((line.strip() for line in lines if line.strip()), "")


def _unquote(line: str) -> str:
    return re.sub(r"^[ \t]*> ?", "", line)


def _header_fields(lines: list[str]) -> tuple[dict[str, str], int]:
    """The header block's fields and the index of the first body line after it."""
    fields: dict[str, str] = {}
    index = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    end = min(len(lines), index + 40)
    last = ""
    while index < end and lines[index].strip():
        line = lines[index]
        name, value = _field(line)
        if name and name not in fields:
            fields[name] = value
            last = name
        elif last and (line[:1] in " \t" or last in ("to", "cc")):
            fields[last] = f"{fields[last]} {line.strip()}"
        else:
            break
        index += 1
    return fields, index


def _field(line: str) -> tuple[str, str]:
    match = _HEADER_LINE.match(line)
    if not match:
        return "", ""
    label = " ".join(match.group("label").lower().split())
    return _LABEL_TO_FIELD.get(label, ""), match.group("value").strip()


def _address_text(value: str) -> str:
    """Outlook's "Name [mailto:x]" and linkified "x <mailto:x>" as plain address lists."""
    value = re.sub(r"\[mailto:([^\]]+)\]", r"<\1>", value)
    value = re.sub(r"\s*<mailto:[^>]*>", "", value)
    return _semicolons_as_commas(value)


def _semicolons_as_commas(value: str) -> str:
    out, quoted = [], False
    for char in value:
        if char == '"':
            quoted = not quoted
        out.append("," if char == ";" and not quoted else char)
    return "".join(out).strip().strip(",")


_HTML_CUTS = (
    re.compile(r'<div[^>]*class="gmail_attr"[^>]*>.*?</div>', re.IGNORECASE | re.DOTALL),
    re.compile(r'<table[^>]*class="moz-email-headers-table"[^>]*>.*?</table>', re.IGNORECASE | re.DOTALL),
    re.compile(r'<div[^>]*id="divRplyFwdMsg"[^>]*>.*?</div>', re.IGNORECASE | re.DOTALL),
)


def _original_html(html: str) -> str:
    """The HTML after the forward header, for clients that mark the header with a class or id."""
    for pattern in _HTML_CUTS:
        match = pattern.search(html)
        if match:
            return html[match.end() :].strip()
    return ""


def _forward_by_library(text: str, *, subject: str, html: str) -> InlineForward | None:
    """Other clients and languages, read by email-forward-parser's patterns.

    It is called without the subject: with one, a "Fwd:" prefix alone marks a forward.
    Its Outlook 2019 separators are reply attributions ("On …, "Jane" <j@x> wrote:"),
    so a text holding one is left alone, as is Outlook's reply block without a
    forward prefix. Long lines are cut first: its patterns backtrack on them.
    """
    if _REPLY_ATTRIBUTION.search(text) or (not has_forward_prefix(subject) and _has_outlook_block(text)):
        return None
    short_lines = "\n".join(line[:LIBRARY_LINE_LIMIT] for line in text[:LIBRARY_TEXT_LIMIT].split("\n"))
    try:
        result = forward_parser.get_forwarded_metadata(short_lines)
    except Exception:
        return None
    original = result.email
    if not result.forwarded or not original.from_.address:
        return None
    return InlineForward(
        client="generic",
        from_header=_mailboxes([original.from_]),
        to_header=_mailboxes(original.to),
        cc_header=_mailboxes(original.cc),
        subject=original.subject,
        date_text=original.date,
        text=original.body,
        html=_original_html(html),
        text_without_forward_header="\n\n".join(part for part in (result.message, original.body) if part),
    )


def _has_outlook_block(text: str) -> bool:
    return any(
        pattern.search(text) for pattern in (_OUTLOOK_SEPARATOR, _OUTLOOK_WEB_SEPARATOR, _BARE_FROM_LINE)
    )


def _mailboxes(mailboxes: list[forward_parser.MailboxResult]) -> str:
    return ", ".join(f'"{m.name}" <{m.address}>' if m.name else m.address for m in mailboxes if m.address)


# --- dates as forward blocks write them ---

_MONTHS = {
    1: "jan january januar januari janvier janv enero ene",
    2: "feb february februar februari février févr fév febrero",
    3: "mar march märz mär mars marzo",
    4: "apr april avril avr abril abr",
    5: "may mai maj mayo",
    6: "jun june juni juin junio",
    7: "jul july juli juillet juil julio",
    8: "aug august augusti août agosto ago",
    9: "sep sept september septembre septiembre",
    10: "oct october oktober okt octobre octubre",
    11: "nov november novembre noviembre",
    12: "dec december dezember dez décembre déc diciembre dic",
}
_MONTH_BY_NAME = {name: number for number, names in _MONTHS.items() for name in names.split()}
_ZONES = {"utc": 0, "gmt": 0, "z": 0, "cet": 1, "mez": 1, "cest": 2, "mesz": 2, "bst": 1, "wet": 0, "west": 1}
_ZONES |= {"est": -5, "edt": -4, "cst": -6, "cdt": -5, "mst": -7, "mdt": -6, "pst": -8, "pdt": -7}
_TIME = re.compile(r"\b(\d{1,2})[:.h](\d{2})(?:[:.](\d{2}))?\s*(a\.?m\.?|p\.?m\.?)?(?![\d.])", re.IGNORECASE)
_YEAR = re.compile(r"\b(19\d{2}|20\d{2})\b")
_NUMERIC_DATE = re.compile(r"\b(?:(\d{4})-(\d{1,2})-(\d{1,2})|(\d{1,2})\.(\d{1,2})\.(\d{4}))\b")
_OFFSET = re.compile(r"(?:\b(?:gmt|utc)\s*|\s(?=[+-]\d{4}\b))([+-])(\d{1,2}):?(\d{2})?\b")
_RFC_2822_DATE = re.compile(r"^\s*(?:[a-z]{3},\s*)?\d{1,2}\s+[a-z]{3}\s+\d{4}\s+\d{1,2}:\d{2}", re.IGNORECASE)


def parse_forward_date(date_text: str, *, default_tz: tzinfo = UTC) -> datetime | None:
    """Read a date as forward blocks write it, in any of the five languages.

    Without a zone in the text, the date is taken in `default_tz`: the forwarder's
    client wrote it in the forwarder's time, which the outer Date header carries.
    """
    if not date_text.strip():
        return None
    if _RFC_2822_DATE.match(date_text):
        try:
            moment = parsedate_to_datetime(date_text)
            return moment if moment.tzinfo else moment.replace(tzinfo=default_tz)
        except (TypeError, ValueError, IndexError):
            pass
    try:
        return _loose_date(date_text.lower(), default_tz)
    except ValueError:
        return None


def _loose_date(text: str, default_tz: tzinfo) -> datetime | None:
    time_match = _TIME.search(text)
    hour, minute, second = 0, 0, 0
    if time_match:
        hour, minute, second = int(time_match[1]), int(time_match[2]), int(time_match[3] or 0)
        meridiem = (time_match[4] or "").replace(".", "")
        hour = hour % 12 + (12 if meridiem == "pm" else 0) if meridiem else hour
        text = text[: time_match.start()] + " " + text[time_match.end() :]
    numeric = _NUMERIC_DATE.search(text)
    if numeric:
        iso = numeric[1] is not None
        year, month, day = (int(numeric[n]) for n in ((1, 2, 3) if iso else (6, 5, 4)))
    else:
        year_match = _YEAR.search(text)
        if not year_match:
            return None
        # The last month word before the year: "mar. 2 avr. 2024" starts with Tuesday, not March.
        words = re.findall(r"[^\W\d_]+", text[: year_match.start()]) or re.findall(r"[^\W\d_]+", text)
        month = next((_MONTH_BY_NAME[w] for w in reversed(words) if w in _MONTH_BY_NAME), None)
        if month is None:
            return None
        year = int(year_match[1])
        rest = text[: year_match.start()] + " " + text[year_match.end() :]
        day_match = re.search(r"\b(\d{1,2})\b", rest)
        if not day_match:
            return None
        day = int(day_match[1])
    return datetime(year, month, day, hour, minute, second, tzinfo=_zone(text) or default_tz)


def _zone(text: str) -> tzinfo | None:
    offset = _OFFSET.search(text)
    if offset:
        sign = -1 if offset[1] == "-" else 1
        return timezone(sign * timedelta(hours=int(offset[2]), minutes=int(offset[3] or 0)))
    for word in re.findall(r"[a-z]+", text):
        if word in _ZONES:
            return timezone(timedelta(hours=_ZONES[word]))
    return None
