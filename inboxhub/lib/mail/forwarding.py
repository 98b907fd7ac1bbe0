"""Find the original message inside an inline forward (G6), in pure text functions.

Each mail client writes its forward block its own way: a separator line, then a
small header block (From, Date, Subject, To, Cc) in the forwarder's language,
then the original body. `find_inline_forward` reads the blocks of Gmail, Outlook
(desktop, new Outlook 2019+, on the web), Apple Mail, Thunderbird, Yahoo, MailMate
and German web mailers in some twenty-five languages, and falls back to
`email-forward-parser` for what it does not know. Attached `message/rfc822`
forwards are read by parsing.py.

Two kinds of separator: one that says "forwarded" in words, which marks a forward
whatever the subject, and one that replies use too ("Original Message", a line of
underscores, a bare From block), which marks a forward only under a forward
subject prefix ("FW:", "I:", "PD:", ...), or, for a separator line, under a
subject that is not a reply's either.
"""

import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from email.header import ecre as _ENCODED_WORD
from email.utils import parsedate_to_datetime

from emailforwardparser import forward_parser, regexs, utils

# Bounds that keep a hostile text of many "From:" lines linear.
MAX_CANDIDATES = 20
HEADER_WINDOW = 4_000
LIBRARY_TEXT_LIMIT = 20_000
LIBRARY_LINE_LIMIT = 500


@dataclass(frozen=True)
class InlineForward:
    client: str  # "gmail", "outlook", "outlook_web", "apple_mail", "thunderbird", "yahoo", "mailmate",
    # "webmailer" or "generic"
    from_header: str  # the original From as written, e.g. "Jane Doe <jane@example.com>"
    to_header: str
    cc_header: str
    subject: str
    date_text: str
    text: str  # the original body
    html: str  # the original HTML body when it could be cut out cheaply, else ""
    text_without_forward_header: str  # the forwarder's note and the original body, without the block


def _words(text: str) -> set[str]:
    return {_fold(word) for word in text.strip().split("\n") if word.strip()}


def _fold(text: str) -> str:
    """Lower case, one space, and the cedilla and comma-below forms of ș and ț made one."""
    if text.isascii():
        return " ".join(text.lower().split())
    text = unicodedata.normalize("NFC", text).lower().replace("ş", "ș").replace("ţ", "ț")
    return " ".join(text.replace("\u0307", "").split())


# Field labels of the forward header block, per field, one a line, as clients write them.
FIELD_LABELS = {
    "from": _words("""
        from
        von
        från
        fra
        de
        de la
        expéditeur
        remitente
        od
        lähettäjä
        šalje
        feladó
        da
        van
        expeditorul
        отправитель
        kimden
        від кого
        saatja
        gönderen
        от
        від
        mittente
        nadawca
        afzender
        absender
        avsändare
        送信元
        差出人
        发件人
        寄件者
    """),
    "date": _words("""
        date
        sent
        datum
        gesendet
        gesendet am
        skickat
        skickat den
        envoyé
        envoyé le
        enviado
        enviado el
        enviada em
        enviado em
        fecha
        dato
        sendt
        päivämäärä
        päiväys
        lähetetty
        dátum
        data
        dată
        дата
        tarih
        elküldve
        inviato
        verzonden
        wysłano
        wysłane
        trimis
        отправлено
        odoslané
        odesláno
        gönderildi
        gönderilen
        gönderme tarihi
        відправлено
        надіслано
        日付
        送信日時
    """),
    "to": _words("""
        to
        an
        till
        til
        à
        a
        para
        pour
        destinataire
        komu
        vastaanottaja
        prima
        címzett
        aan
        do
        destinatarul
        către
        кому
        pre
        kime
        adresat
        empfänger
        送信先
        宛先
    """),
    "cc": _words("""
        cc
        cc.
        kopie (cc)
        kopie
        kopia
        kopi
        kopio
        copie à
        copie
        másolat
        másolatot kap
        dw
        копия
        копія
        bilgi
        kópia
        cco
    """),
    "subject": _words("""
        subject
        betreff
        ämne
        objet
        sujet
        asunto
        předmět
        emne
        aihe
        predmet
        tárgy
        oggetto
        onderwerp
        temat
        assunto
        subiectul
        subiect
        тема
        konu
        naslov
        件名
    """),
    "reply_to": _words("""
        reply-to
        antwort an
        svara till
        répondre à
        responder a
        odgovori na
        odpověď na
        svar til
        antwoord aan
        vastaus
        válaszcím
        rispondi a
        odpowiedź-do
        răspuns către
        ответ-кому
        odpovedať-pre
        yanıt adresi
        кому відповісти
    """),
}
_LABEL_TO_FIELD = {label: name for name, labels in FIELD_LABELS.items() for label in labels}
_HEADER_LINE = re.compile(r"^\s*\*?(?P<label>[^\W\d_][\w ().-]{0,23}?)\*?\s*[:：]\*?[ \t\xa0]*(?P<value>.*)$")
_FROM_LABELS = "|".join(re.escape(label) for label in sorted(FIELD_LABELS["from"], key=len, reverse=True))
_BARE_FROM_LINE = re.compile(
    r"^[ \t]*\*?(?:" + _FROM_LABELS + r")\*?[ \t\xa0]*[:：]", re.IGNORECASE | re.MULTILINE
)

# Words between dashes: "---------- Forwarded message ---------", "-------- Mesaj redirecționat --------".
_FORWARD_PHRASES = _words("""
    forwarded message
    weitergeleitete nachricht
    weitergeleitete e-mail
    vidarebefordrat meddelande
    vidarebefordrat mejl
    message transféré
    message transmis
    mensaje reenviado
    přeposlaná zpráva
    videresendt meddelelse
    videresendt besked
    edelleenlähetetty viesti
    välitetty viesti
    továbbított üzenet
    messaggio inoltrato
    doorgestuurd bericht
    videresendt melding
    przekazana wiadomość
    treść przekazanej wiadomości
    wiadomość przesłana dalej
    mensagem reencaminhada
    mensagem encaminhada
    mesaj redirecționat
    пересылаемое сообщение
    перенаправленное сообщение
    пересланное сообщение
    preposlaná správa
    iletilmiş mesaj
    iletilen ileti
    перенаправлене повідомлення
    переслане повідомлення
    proslijeđena poruka
    メッセージを転送
""")
# Words between dashes that replies write too: "-----Original Message-----", "----- Original Nachricht ----".
_ORIGINAL_PHRASES = _words("""
    original message
    ursprüngliche nachricht
    original nachricht
    original-nachricht
    originalnachricht
    ursprungligt meddelande
    originalmeddelande
    message d'origine
    message original
    mensaje original
    messaggio originale
    oorspronkelijk bericht
    oprindelig meddelelse
    opprinnelig melding
    alkuperäinen viesti
    původní zpráva
    pôvodná správa
    eredeti üzenet
    wiadomość oryginalna
    oryginalna wiadomość
    mensagem original
    mesaj original
    исходное сообщение
    оригинальное сообщение
    orijinal ileti
    orijinal mesaj
    оригінальне повідомлення
""")
# A phrase and a colon alone on a line: Apple Mail's "Begin forwarded message:", MailMate's
# "Forwarded message:".
_COLON_PHRASES = _words("""
    begin forwarded message
    forwarded message
    anfang der weitergeleiteten nachricht
    anfang der weitergeleiteten e-mail
    vidarebefordrat mejl
    början på vidarebefordrat meddelande
    début du message réexpédié
    début du message transféré
    inicio del mensaje reenviado
    comienzo del mensaje reenviado
    začátek přeposílané zprávy
    start på videresendt besked
    välitetty viesti alkaa
    započni proslijeđenu poruku
    továbbított levél kezdete
    inizio messaggio inoltrato
    begin doorgestuurd bericht
    videresendt melding
    początek przekazywanej wiadomości
    início da mensagem reencaminhada
    início da mensagem encaminhada
    începe mesajul redirecționat
    начало переадресованного сообщения
    начало пересылаемого сообщения
    začiatok preposlanej správy
    i̇leti başlangıcı
    ileti başlangıcı
    початок листа, що пересилається
""")
_DASHED_LINE = re.compile(
    r"^[ \t]*>?[ \t]*(?P<dashes>-{3,})[ \t]*(?P<phrase>[^\n]{3,60}?)[ \t]*-{3,}[ \t]*$", re.MULTILINE
)
_COLON_LINE = re.compile(r"^[ \t]*>?[ \t]*(?P<phrase>[^\n:>]{5,60}?)[ \t\xa0]*:[ \t]*$", re.MULTILINE)
_UNDERSCORE_LINE = re.compile(r"^[ \t]*_{10,}[ \t]*$", re.MULTILINE)

# A reply's attribution line ("On Mon, Jane wrote:"): a forward block quoted below it is a reply.
_COLON_ENDED_LINE = re.compile(r"^[^\n]*:[ \t]*$", re.MULTILINE)
_REPLY_ATTRIBUTION = re.compile(
    r"^(?![ \t]*>)[^\n]*?(?:\bwrote|\bschrieb|\bskrev|a écrit|escribió|ha scritto|schreef|geschreven"
    r"|escreveu|napisał|napísal|kirjoitti|написал|napsal|ezt írta|yazdı)[^\n]{0,120}:[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_ATTRIBUTION_WORDS = (
    "wrote",
    "schrieb",
    "skrev",
    "a écrit",
    "escribió",
    "ha scritto",
    "schreef",
    "geschreven",
    "escreveu",
    "napisał",
    "napísal",
    "kirjoitti",
    "написал",
    "napsal",
    "ezt írta",
    "yazdı",
)
# One mailbox, or a name alone: a From value the block reader can stand by.
_CLEAR_FROM = re.compile(
    r'^\s*(?:(?:"[^"]*"|[^<>@"]*)\s*<[^<>@\s]+@[^<>@\s]+>|[^\s<>@,;"]+@[^\s<>@,;"]+|[^<>@]*)\s*$'
)
_GLUED_FROM = re.compile(
    r"^[^<>@]*<(?P<email>[^<>@\s]+@[^<>@\s]+)>\s*(?P<label>[^\W\d_][\w .-]{0,23}?)\s*[:：]"
)
# Under a forward prefix, Outlook 2019 writes its forward as an attribution naming the address.
ATTRIBUTION = "attribution"
_ATTRIBUTED = re.compile(r"[<\[]([^\s<>\[\]@]+@[^\s<>\[\]@]+)[>\]]")
# Prefixes of forwarded subjects, after [tags] only: "RE: FW:" is a reply to a forward.
_TAGS = r"^\s*(?:\[[^\]]*\]\s*)*"
_FORWARD_SUBJECT = re.compile(
    _TAGS + r"(?:fwd?|fw|wg|vb|vs|tr|rv|enc|weiterl|i|pd|redir\.?|vl|videresend|i̇lt|ilt|doorst)\s*:",
    re.IGNORECASE,
)
_REPLY_SUBJECT = re.compile(
    _TAGS
    + r"(?:re|aw|sv|antw|antwort|odp|odg|ynt|vá|r|rif|réf|rép|res|отв|ответ|atb|vast)\s*(?:\[\d+\])?\s*:",
    re.IGNORECASE,
)


def has_forward_prefix(subject: str) -> bool:
    """Whether the subject says "forwarded" (Fwd:, FW:, WG:, TR:, I:, PD:, ...); never enough alone."""
    return bool(_FORWARD_SUBJECT.match(subject))


def has_reply_prefix(subject: str) -> bool:
    """Whether the subject says "reply" (Re:, AW:, SV:, Odp:, ...)."""
    return bool(_REPLY_SUBJECT.match(subject))


def find_inline_forward(text: str, *, subject: str, html: str = "") -> InlineForward | None:
    """The inline forward block in `text`, or None when the message is not an inline forward."""
    text = text.replace("\r\n", "\n")
    forward_prefix, reply_prefix = has_forward_prefix(subject), has_reply_prefix(subject)
    attributions = _attributions(text)
    first_attribution = attributions[0][0] if attributions else len(text)
    candidates = _candidate_blocks(
        text, attributions, forward_prefix=forward_prefix, reply_prefix=reply_prefix, html=html
    )
    first_reply_block = _first_reply_block(text) if reply_prefix else len(text)
    for start, end, client in candidates:
        if not forward_prefix and min(first_attribution, first_reply_block) < start:
            return None  # a forward quoted below a reply's attribution or header block is a reply
        forward = _read_block(text, start, end, client, html=html)
        glued = _glued(forward.from_header) if forward is not None else ""
        if glued:
            # Yahoo glues its header lines into one: the library's loose patterns read those, and
            # its sender is taken when it is the address the glued From line starts with.
            by_library = _forward_by_library(text, subject=subject, forward_prefix=forward_prefix, html=html)
            forward = by_library if by_library and glued in by_library.from_header else forward
        if forward is not None:
            # Outlook 2019's attribution names no subject: the forward's, without its prefix, is it.
            return forward if forward.subject else replace(forward, subject=_without_prefix(subject))
    # Its Outlook 2019 separators are reply attributions: without a forward prefix, such a text is a reply.
    if reply_prefix or (attributions and not forward_prefix):
        return None
    return _forward_by_library(text, subject=subject, forward_prefix=forward_prefix, html=html)


def _first_reply_block(text: str) -> int:
    """Where the header block an Outlook reply quotes its parent under starts, or len(text)."""
    separators = [m.start() for m in _UNDERSCORE_LINE.finditer(text)][:1]
    separators += [
        m.start()
        for m in _DASHED_LINE.finditer(text)
        if any(words in _fold(m.group("phrase")) for words in _ORIGINAL_PHRASES)
    ][:1]
    blocks = [m.start() for m in _BARE_FROM_LINE.finditer(text)][:MAX_CANDIDATES]
    separators += [start for start in blocks if _is_header_block(text, start)][:1]
    return min(separators, default=len(text))


def _is_header_block(text: str, start: int) -> bool:
    fields, _ = _header_fields(text[start : start + HEADER_WINDOW].split("\n"))
    return "from" in fields and bool({"subject", "date"} & fields.keys())


def _glued(from_value: str) -> str:
    """The address of a From glued to the next header line ("Jane <j@x>To: …"), else ""."""
    match = None if _CLEAR_FROM.match(from_value) else _GLUED_FROM.match(from_value)
    return match.group("email") if match and _LABEL_TO_FIELD.get(_fold(match.group("label"))) else ""


def _without_prefix(subject: str) -> str:
    prefix = _FORWARD_SUBJECT.match(subject)
    return subject[prefix.end() :].strip() if prefix else subject


def _attributions(text: str) -> list[tuple[int, int]]:
    """Where the reply attributions are; only lines that end with a colon are tried, which keeps it linear."""
    found = []
    for line in _COLON_ENDED_LINE.finditer(text):
        folded = line.group().lower()
        if any(word in folded for word in _ATTRIBUTION_WORDS) and _REPLY_ATTRIBUTION.match(line.group()):
            found.append(line.span())
            if len(found) == MAX_CANDIDATES:
                break
    return found


def _candidate_blocks(
    text: str, attributions: list[tuple[int, int]], *, forward_prefix: bool, reply_prefix: bool, html: str
) -> list[tuple[int, int, str]]:
    """(start of separator, end of separator, client) for each place a forward block may begin."""
    not_a_reply = forward_prefix or not reply_prefix
    found: list[tuple[int, int, str]] = []
    for match in _DASHED_LINE.finditer(text):
        phrase = _fold(match.group("phrase"))
        if any(words in phrase for words in _FORWARD_PHRASES):
            found.append((match.start(), match.end(), _dashed_client(match.group("dashes"))))
        elif not_a_reply and any(words in phrase for words in _ORIGINAL_PHRASES):
            client = "webmailer" if "nachricht" in phrase and "ursprüngliche" not in phrase else "outlook"
            found.append((match.start(), match.end(), client))
    for match in _COLON_LINE.finditer(text):
        phrase = _fold(match.group("phrase"))
        if phrase in _COLON_PHRASES:
            found.append(
                (match.start(), match.end(), "mailmate" if phrase == "forwarded message" else "apple_mail")
            )
    if not_a_reply:
        found += [(m.start(), m.end(), "outlook_web") for m in _UNDERSCORE_LINE.finditer(text)]
    if forward_prefix:
        found += [(m.start(), m.start(), "outlook") for m in _BARE_FROM_LINE.finditer(text)]
        found += [(a, b, ATTRIBUTION) for a, b in attributions if _ATTRIBUTED.search(text, a, b)]
    elif not reply_prefix and _WEBMAILER_QUOTE in html:
        # GMX and web.de quote in a <div name="quote"> whose block starts with the date ("Gesendet:",
        # then "Von:"): with that mark, and no reply prefix, a forward. Bounces quote headers too.
        bare = _BARE_FROM_LINE.finditer(text)
        found += [(m.start(), m.start(), "webmailer") for m in bare if _dated(text, m.start())]
    return sorted(found)[:MAX_CANDIDATES]


_WEBMAILER_QUOTE = 'name="quote"'


def _dated(text: str, start: int) -> bool:
    """Whether the line above the one at `start` is a block's date line."""
    previous = text.rfind("\n", 0, max(start - 1, 0)) + 1
    return start > 0 and _field(text[previous : start - 1])[0] == "date"


def _dashed_client(dashes: str) -> str:
    if len(dashes) >= 9:
        return "gmail"
    if len(dashes) in (3, 8):  # Thunderbird's Polish separator has three
        return "thunderbird"
    return "yahoo"


def _read_block(text: str, start: int, end: int, client: str, *, html: str) -> InlineForward | None:
    if client == ATTRIBUTION:
        return _read_attribution(text, start, end, html=html)
    if start == end:
        start = end = _block_start(text, start)
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


def _read_attribution(text: str, start: int, end: int, *, html: str) -> InlineForward | None:
    """Outlook 2019's forward: an attribution line ("On …, "Jane" <j@x> wrote:"), the body indented."""
    line = text[start:end]
    address = _ATTRIBUTED.search(line)
    if address is None:
        return None
    before = line[: address.start()].rstrip()
    quoted = re.search(r'(?:"([^"]+)"|«\s*([^»]+?)\s*»|„([^”"]+)[”"])\s*$', before)
    if quoted:
        name = next(group for group in quoted.groups() if group)
    else:
        words = r",|\bheeft\b|\bpoužívateľ\b|\bidőpontban\b|\bschrieb\b|\bskrev\b"
        name = re.split(words, before)[-1].strip(" \t()")
    if name and not re.fullmatch(r"[^\W\d_][\w .'-]{0,80}", name):
        name = ""
    body = "\n".join(re.sub(r"^ {4}", "", body_line) for body_line in text[end:].split("\n")).strip()
    note = text[:start].strip()
    return InlineForward(
        client="outlook",
        from_header=f'"{name}" <{address.group(1)}>' if name else address.group(1),
        to_header="",
        cc_header="",
        subject="",
        date_text="",
        text=body,
        html="",
        text_without_forward_header="\n\n".join(part for part in (note, body) if part),
    )


def _block_start(text: str, start: int) -> int:
    """Where the header block of the From line at `start` begins: web mailers put the date first."""
    for _ in range(6):
        if start == 0:
            break
        previous = text.rfind("\n", 0, start - 1) + 1
        name, _ = _field(text[previous : start - 1])
        if not name or name == "from":
            break
        start = previous
    return start


def _client_from_html(client: str, html: str) -> str:
    if client in ("outlook", "outlook_web") and "divRplyFwdMsg" in html:
        return "outlook_web"
    if client == "yahoo" and ("gmail_attr" in html or "gmail_quote" in html):
        return "gmail"
    if client == "yahoo" and "moz-forward-container" in html:
        return "thunderbird"
    if client == "outlook" and _WEBMAILER_QUOTE in html:
        return "webmailer"
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
        elif last and (line[:1] in " \t" or last in ("to", "cc")) and not name:
            fields[last] = f"{fields[last]} {line.strip()}"
        else:
            break
        index += 1
    return fields, index


def _field(line: str) -> tuple[str, str]:
    match = _HEADER_LINE.match(line)
    if not match:
        return "", ""
    return _LABEL_TO_FIELD.get(_fold(match.group("label")), ""), match.group("value").strip()


def _address_text(value: str) -> str:
    """Outlook's "Name [mailto:x]" and linkified "x <mailto:x>" forms as plain address lists."""
    value = re.sub(r"\[mailto:([^\]]+)\]", r"<\1>", value)
    value = re.sub(r"<([^<>\s]+)<mailto:[^<>]*>>", r"<\1>", value)  # "Jane <j@x<mailto:j@x>>"
    value = re.sub(r"([^\s<>,;]+@[^\s<>,;]+)\s*<mailto:[^<>]*>", r"\1", value)  # "j@x <mailto:j@x>"
    value = re.sub(r"<mailto:([^<>]*)>", r"<\1>", value)  # "Jane <mailto:j@x>"
    value = re.sub(r"(^|[,;]\s*)\*([^*<>@,;]+)\*(?=\s*<)", r"\1\2", value)  # "*Jane* <j@x>", bold
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


def _forward_by_library(text: str, *, subject: str, forward_prefix: bool, html: str) -> InlineForward | None:
    """Other clients and languages, read by email-forward-parser's patterns.

    It is called without the subject first: with one, a "Fwd:" prefix alone marks a
    forward. Under a forward prefix it is asked once more with the subject, which reads
    a bare header block. Long lines are cut first: its patterns backtrack on them.
    """
    short_lines = "\n".join(line[:LIBRARY_LINE_LIMIT] for line in text[:LIBRARY_TEXT_LIMIT].split("\n"))
    if not _library_may_find_forward(short_lines, with_subject=forward_prefix):
        return None
    for library_subject in (None, subject) if forward_prefix else (None,):
        result = _library_metadata(short_lines, library_subject)
        original = result.email if result else None
        if result is None or original is None or not _has_sender(original, by_subject=bool(library_subject)):
            continue
        return InlineForward(
            client="generic",
            from_header=_mailboxes([original.from_]),
            to_header=_mailboxes(original.to),
            cc_header=_mailboxes(original.cc),
            subject=original.subject,
            date_text=original.date,
            text=original.body,
            html=_original_html(html),
            text_without_forward_header="\n\n".join(p for p in (result.message, original.body) if p),
        )
    return None


def _library_may_find_forward(text: str, *, with_subject: bool) -> bool:
    """False only when email-forward-parser cannot find a forward in `text` (issue 18).

    It finds one only where one of its separators matches the text as it reads it, or, asked with
    a forward subject, one of its "From:" lines: when none does, asking it changes nothing. Its
    reading drops each non-graphic character with a Python call per character, most of the time it
    took on a mail with no forward; here the same characters go by one `translate`. Where it would
    decode an encoded word first, it is asked.
    """
    dropped = {ord(char): None for char in set(text) if not utils.is_graphic(char)}
    text = text.translate(dropped)
    if _ENCODED_WORD.search(text):
        return True
    # Then as its parse_body reads the body, before it looks for a separator.
    text = regexs.CARRIAGE_RETURN.sub("\n", text)
    text = regexs.BYTE_ORDER_MARK.sub("", text)
    text = regexs.TRAILING_NON_BREAKING_SPACE.sub("", text)
    text = regexs.NON_BREAKING_SPACE.sub(" ", text)
    patterns = _LIBRARY_SEPARATORS + _LIBRARY_FROM_LINES if with_subject else _LIBRARY_SEPARATORS
    return any((not required or required in text) and pattern.search(text) for required, pattern in patterns)


def _required_text(pattern: re.Pattern) -> str:
    """The longest run of literal characters in every match of `pattern`, or "" when none is known.

    Read from the pattern's own parse: its top-level sequence (groups opened), where consecutive
    literal characters must match consecutively. Searching for that text first is a memchr-fast
    "cannot match" for most patterns; their `.+` parts backtrack over every line otherwise.
    """
    if pattern.flags & re.IGNORECASE:
        return ""
    try:
        from re import _parser  # the standard library's own reading of a pattern

        items = list(_parser.parse(pattern.pattern))
        literal, group = _parser.LITERAL, _parser.SUBPATTERN
    except Exception:
        return ""
    runs, run = [], ""
    while items:
        op, value = items.pop(0)
        if op is literal:
            run += chr(value)
            continue
        runs.append(run)
        run = ""
        if op is group and not value[1] & re.IGNORECASE:
            items[:0] = list(value[3])
    return max([*runs, run], key=len)


_LIBRARY_SEPARATORS = [(_required_text(pattern), pattern) for pattern in regexs.SEPARATOR]
_LIBRARY_FROM_LINES = [(_required_text(pattern), pattern) for pattern in regexs.ORIGINAL_FROM]


def _has_sender(original: forward_parser.OriginalMetadata, *, by_subject: bool) -> bool:
    """An address, or a name in a block with a date: a subject prefix alone finds "From:" in prose."""
    if original.from_.address:
        return True
    return bool(original.from_.name.strip()) and (bool(original.date) or not by_subject)


def _library_metadata(text: str, subject: str | None) -> forward_parser.ForwardMetadata | None:
    try:
        result = forward_parser.get_forwarded_metadata(text, subject)
    except Exception:
        return None
    return result if result.forwarded else None


def _mailboxes(mailboxes: list[forward_parser.MailboxResult]) -> str:
    written = []
    for mailbox in mailboxes:
        name = re.sub(r'["\\]', "", mailbox.name).strip()
        if mailbox.address:
            written.append(f'"{name}" <{mailbox.address}>' if name else mailbox.address)
        elif name and len(mailboxes) == 1:
            written.append(name)
    return ", ".join(written)


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
# The other languages of the forward blocks, as their dates name the month (genitive where it differs).
_MORE_MONTHS = {
    1: "gennaio gen janeiro tammikuuta tammikuu stycznia styczeń ledna leden januára január ianuarie ocak"
    " января январь січня siječnja",
    2: "febbraio fevereiro fev helmikuuta helmikuu lutego luty února únor februára február februarie"
    " şubat февраля февраль лютого veljače",
    3: "maart mrt marts março maaliskuuta maaliskuu marca marzec března březen március martie mart марта март"
    " березня ožujka",
    4: "aprile huhtikuuta huhtikuu kwietnia kwiecień dubna duben apríla április aprilie nisan апреля"
    " апрель квітня travnja",
    5: "mei maggio mag maio toukokuuta toukokuu maja maj května květen mája május mayıs мая май травня"
    " svibnja",
    6: "giugno giu junho kesäkuuta kesäkuu czerwca czerwiec června červen júna június iunie haziran июня"
    " июнь червня lipnja",
    7: "luglio lug julho heinäkuuta heinäkuu lipca lipiec července červenec júla július iulie temmuz июля"
    " июль липня srpnja",
    8: "augustus agosto elokuuta elokuu sierpnia sierpień srpna srpen augusta augusztus ağustos августа"
    " август серпня kolovoza",
    9: "settembre setembro syyskuuta syyskuu września wrzesień září septembra szeptember septembrie eylül"
    " сентября сентябрь вересня rujna",
    10: "ottobre ott outubro lokakuuta lokakuu października październik října říjen októbra október"
    " octombrie ekim октября октябрь жовтня",
    11: "novembro marraskuuta marraskuu listopada listopad listopadu novembra noiembrie kasım ноября ноябрь"
    " studenoga",
    12: "dicembre dezembro desember joulukuuta joulukuu grudnia grudzień prosince prosinec decembra"
    " decembrie aralık декабря декабрь грудня prosinca",
}
_MONTH_BY_NAME = {
    name: number
    for months in (_MONTHS, _MORE_MONTHS)
    for number, names in months.items()
    for name in names.split()
}
_ZONES = {"utc": 0, "gmt": 0, "z": 0, "cet": 1, "mez": 1, "cest": 2, "mesz": 2, "bst": 1, "wet": 0, "west": 1}
_ZONES |= {"est": -5, "edt": -4, "cst": -6, "cdt": -5, "mst": -7, "mdt": -6, "pst": -8, "pdt": -7}
_TIME = re.compile(r"\b(\d{1,2})[:.h](\d{2})(?:[:.](\d{2}))?\s*(a\.?m\.?|p\.?m\.?)?(?![\d.])", re.IGNORECASE)
_YEAR = re.compile(r"\b(19\d{2}|20\d{2})\b")
_NUMERIC_DATE = re.compile(r"\b(?:(\d{4})-(\d{1,2})-(\d{1,2})|(\d{1,2})\.(\d{1,2})\.(\d{4}))\b")
_OFFSET = re.compile(r"(?:\b(?:gmt|utc)\s*|\s(?=[+-]\d{4}\b))([+-])(\d{1,2}):?(\d{2})?\b")
_RFC_2822_DATE = re.compile(r"^\s*(?:[a-z]{3},\s*)?\d{1,2}\s+[a-z]{3}\s+\d{4}\s+\d{1,2}:\d{2}", re.IGNORECASE)


def parse_forward_date(date_text: str, *, default_tz: tzinfo = UTC) -> datetime | None:
    """Read a date as forward blocks write it, in the languages of the blocks read above.

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
