"""Retained raw mail without the attachment bytes stored beside it (issue 18, point 4).

The spool keeps each accepted mail's raw bytes for SPOOL_RETENTION_DAYS, and each
attachment's decoded bytes are also stored as a file with their sha256: the raw
copy holds them a second time, base64-encoded. `compact` cuts such bodies out and
`restore` puts them back, byte for byte.

How it stays lossless:
- The MIME structure is walked on the bytes themselves, never re-serialized by the
  `email` package (which is not byte-exact). Whatever cannot be walked with
  certainty (a bare CR, a header line that is not one, a repeated Content-Type, a
  multipart without its close delimiter, an inner boundary equal to an outer one)
  is left as it is.
- Only a base64 body in canonical form is cut out: lines of one length joined by
  one line ending, which re-encoding the decoded bytes with that length and ending
  gives back exactly (checked at compaction). The line endings after the last line
  and everything else stay in place. Anything else stays as it is.
- What was cut out is listed in one header line that only `compact` writes, in
  front of the mail: `X-InboxHub-Compacted: 1 {json}`. It gives each cut's offset
  in what follows, the payload's sha256, line length and ending, and the sha256 and
  size of the whole original. Text in the mail never counts as a marker: `restore`
  reads only that first line, and a raw mail that itself begins with it is wrapped
  in a header with no cuts, so it comes back unchanged and loads nothing.
- `restore` checks every payload's sha256, each re-encoded body's length, each
  placeholder, and the whole result's size and sha256; `compact` runs `restore`
  on its own output before returning it. Any doubt raises `RestoreError`, never
  returns other bytes.

Whether data is compacted is known for certain only for what `compact` returned:
a row never passed through it may begin with the header line too (the sender
wrote it), so the spool records compaction in a column of its own and calls
`restore` only for such rows.

`pack` is what the spool keeps: `compact`'s output deflated (zlib, with a preset
dictionary of mail's common header and MIME text, as most retained mails are a
few KB of headers and text: a third smaller than zlib alone would leave them,
half of what PostgreSQL's own compression keeps, which does not even try rows
under ~2 KB). `unpack` gives the mail back from it, or from `compact`'s output as
rows packed before stored it; zlib's checksum and `restore`'s checks hold.
"""

import binascii
import hashlib
import json
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message

PREFIX = b"X-InboxHub-Compacted: 1 "
# A body shorter than this saves too little to be worth an entry in the header line.
MIN_BODY_BYTES = 512
_EOLS = {"crlf": b"\r\n", "lf": b"\n", "": b""}
_EOL_NAMES = {eol: name for name, eol in _EOLS.items()}
_HEADER_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")
_BASE64_LINE = re.compile(rb"[A-Za-z0-9+/=]+")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_ENCODED_MESSAGE_CTES = ("7bit", "8bit", "binary")
# Deeper nesting than this (multiparts and attached messages) is left as it is: no real mail needs it.
MAX_DEPTH = 20


PACKED_PREFIX = b"X-InboxHub-Packed: 1\r\n"
# Text most mail carries, the likeliest last (nearest to what is deflated: the cheapest to refer to).
# Stored rows are deflated with it: changing it needs a new PACKED_PREFIX version, this one kept.
PACKED_DICTIONARY = (
    b"Received: from  by  with ESMTPS id ; for <>; Return-Path: <>\r\nX-Mailer: User-Agent: "
    b"Mozilla/5.0 Thunderbird Microsoft Outlook Apple Mail iPhone Gmail\r\n"
    b"Authentication-Results: ; spf=pass smtp.mailfrom=; dkim=pass header.d=; dmarc=pass header.from=\r\n"
    b"ARC-Seal: i=1; a=rsa-sha256; t=; cv=none; d=; s=\r\nX-Google-DKIM-Signature: "
    b'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n'
    b'Content-Type: multipart/alternative; boundary="\r\nContent-Type: multipart/related; boundary="'
    b'Content-Type: multipart/mixed; boundary="===============\r\n'
    b'Content-Disposition: attachment; filename="\r\nContent-Disposition: inline\r\n'
    b"Content-Transfer-Encoding: base64\r\nContent-Type: application/pdf\r\nContent-Type: image/png\r\n"
    b"Content-Type: message/rfc822\r\n---------- Forwarded message ---------\r\n"
    b"-----Original Message-----\r\nFrom: Sent: To: Cc: Subject: Re: Fwd: FW: wrote:\r\n> \r\n> > "
    b"Date: Mon, Tue, Wed, Thu, Fri, Sat, Sun, Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec +0000\r\n"
    b"In-Reply-To: <\r\nReferences: <\r\nMessage-ID: <\r\nReply-To: \r\n"
    b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=\r\n i=@; q=dns/txt; s=; t=; "
    b"h=from : to :\r\n subject : date : message-id;\r\n bh=;\r\n b=\r\nFrom: \r\nTo: \r\nCc: \r\nSubject: "
    b'MIME-Version: 1.0\r\nContent-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: 7bit\r\n'
    b'X-InboxHub-Compacted: 1 {"parts":[{"at":,"bytes":,"eol":"crlf","line":76,"sha256":"'
    b"\r\n[base64 body kept as the attachment with sha256 ]\r\n"
)

# Deflated data above this share of the mail saves too little to be worth inflating at each read.
MAX_PACKED_SHARE = 0.9
_DICTIONARY_ID = zlib.adler32(PACKED_DICTIONARY).to_bytes(4, "big")


class RestoreError(ValueError):
    """Compacted raw mail that cannot be given back exactly: a payload missing or changed, or damage."""


@dataclass(frozen=True)
class _Cut:
    start: int  # offset of the base64 text in the raw mail
    end: int
    sha256: str
    line: int
    eol: str


def is_compacted(data: bytes) -> bool:
    """Whether `data` is what `compact` returns when it cut something out (or had to wrap the mail)."""
    return data.startswith(PREFIX)


def compact(raw: bytes, stored: Callable[[str], bool]) -> bytes:
    """The raw mail without the base64 bodies whose decoded bytes `stored(sha256 hex)` says are kept.

    Returns `raw` itself when nothing is cut out and it does not begin like
    compacted data; `restore(compact(raw, stored), load) == raw` for any bytes.
    """
    raw = bytes(raw)  # the database driver may give a memoryview
    cuts: list[_Cut] = []
    payloads: dict[str, bytes] = {}
    if raw.count(b"\r") == raw.count(b"\r\n"):  # a bare CR splits lines differently in each reader
        _walk_entity(raw, 0, len(raw), "text/plain", (), cuts, payloads, stored)
    if not cuts and not is_compacted(raw):
        return raw
    compacted = _build(raw, cuts)
    try:
        if restore(compacted, payloads.__getitem__) == raw:
            return compacted
    except RestoreError:
        pass
    # Unreachable unless this module has a bug; the mail then stays whole.
    return _build(raw, [])


def pack(raw: bytes, stored: Callable[[str], bool]) -> bytes:
    """`compact`'s output deflated: what the spool keeps; `compact`'s output when deflating saves little.

    So `raw` itself when neither pays (kept as received); otherwise
    `unpack(pack(raw, stored), load) == raw`, for any bytes.
    """
    inner = compact(raw, stored)
    compressor = zlib.compressobj(6, zdict=PACKED_DICTIONARY)
    packed = PACKED_PREFIX + compressor.compress(inner) + compressor.flush()
    # The check is unreachable unless zlib has a bug; it is cheap, and the packed bytes replace the mail.
    if len(packed) > len(inner) * MAX_PACKED_SHARE or _inflate(packed) != inner:
        return inner
    return packed


def is_packed(data: bytes) -> bool:
    """Whether `data` begins as what `pack` returns when it deflated the mail."""
    return bytes(data[: len(PACKED_PREFIX)]) == PACKED_PREFIX


def unpack(data: bytes, load: Callable[[str], bytes]) -> bytes:
    """The raw mail `pack` (or `compact`) was given, byte for byte; RestoreError as `restore`."""
    data = bytes(data)
    if not is_packed(data):
        return restore(data, load)
    inner = _inflate(data)
    return restore(inner, load) if is_compacted(inner) else inner


def _inflate(data: bytes) -> bytes:
    stream = data[len(PACKED_PREFIX) : len(PACKED_PREFIX) + 6]
    # zlib would inflate a stream deflated without the dictionary too: only `pack`'s are read.
    if len(stream) < 6 or not stream[1] & 0x20 or stream[2:] != _DICTIONARY_ID:
        raise RestoreError("packed raw mail damaged: not deflated with the packing's dictionary")
    decompressor = zlib.decompressobj(zdict=PACKED_DICTIONARY)
    try:
        inner = decompressor.decompress(memoryview(data)[len(PACKED_PREFIX) :]) + decompressor.flush()
    except zlib.error as exc:
        raise RestoreError(f"packed raw mail damaged: {exc}") from exc
    if not decompressor.eof or decompressor.unused_data:
        raise RestoreError("packed raw mail damaged: the deflated data is cut short or followed by more")
    return inner


def restore(compacted: bytes, load: Callable[[str], bytes]) -> bytes:
    """The raw mail `compact` was given, byte for byte; `load(sha256 hex)` gives a cut-out payload.

    Raises RestoreError when `compacted` is not compacted data, is damaged, or a
    payload cannot be loaded or is not the one cut out.
    """
    compacted = bytes(compacted)
    if not is_compacted(compacted):
        raise RestoreError("not compacted raw mail: it does not begin with the X-InboxHub-Compacted line")
    header_end = compacted.find(b"\r\n")
    if header_end < 0:
        raise RestoreError("compacted raw mail without the end of its X-InboxHub-Compacted line")
    header = _read_header(compacted[len(PREFIX) : header_end])
    body = memoryview(compacted)[header_end + 2 :]
    chunks: list[bytes | memoryview] = []
    loaded: dict[str, bytes] = {}
    position = 0
    for cut in header["parts"]:
        at, sha256 = cut["at"], cut["sha256"]
        placeholder = _placeholder(sha256)
        if at < position or body[at : at + len(placeholder)] != placeholder:
            raise RestoreError(f"compacted raw mail damaged: no placeholder for sha256 {sha256} at {at}")
        if sha256 not in loaded:
            loaded[sha256] = _load(load, sha256)
        encoded = _encode(loaded[sha256], cut["line"], _EOLS[cut["eol"]])
        if len(encoded) != cut["bytes"]:
            raise RestoreError(
                f"compacted raw mail damaged: the body of sha256 {sha256} re-encodes to another length"
            )
        chunks += [body[position:at], encoded]
        position = at + len(placeholder)
    chunks.append(body[position:])
    raw = b"".join(chunks)
    if len(raw) != header["size"] or hashlib.sha256(raw).hexdigest() != header["sha256"]:
        raise RestoreError("compacted raw mail damaged: the restored mail is not the one compacted")
    return raw


# --- compacting ---


def _build(raw: bytes, cuts: list[_Cut]) -> bytes:
    parts, chunks, position, offset = [], [], 0, 0
    for cut in cuts:
        chunks.append(raw[position : cut.start])
        offset += cut.start - position
        parts.append(
            {
                "at": offset,
                "bytes": cut.end - cut.start,
                "eol": cut.eol,
                "line": cut.line,
                "sha256": cut.sha256,
            }
        )
        placeholder = _placeholder(cut.sha256)
        chunks.append(placeholder)
        offset += len(placeholder)
        position = cut.end
    chunks.append(raw[position:])
    header = {"parts": parts, "sha256": hashlib.sha256(raw).hexdigest(), "size": len(raw)}
    line = PREFIX + json.dumps(header, separators=(",", ":"), sort_keys=True).encode("ascii") + b"\r\n"
    return line + b"".join(chunks)


def _placeholder(sha256: str) -> bytes:
    return f"[base64 body kept as the attachment with sha256 {sha256}]".encode("ascii")


def _walk_entity(raw, start, end, default_type, boundaries, cuts, payloads, stored) -> None:
    """Cut what can be cut in the entity (header section and body) at raw[start:end]."""
    fields = _header_fields(raw, start, end)
    if fields is None or len(boundaries) > MAX_DEPTH:
        return
    fields, body_start = fields
    content_types = fields.get("content-type", [])
    ctes = fields.get("content-transfer-encoding", [])
    if len(content_types) > 1 or len(ctes) > 1:
        return
    cte = ctes[0].strip().lower() if ctes else ""
    # The email package's own reading of the type and boundary, on the header's value alone.
    header = Message()
    header.set_default_type(default_type)
    if content_types:
        header["Content-Type"] = content_types[0]
    maintype, content_type = header.get_content_maintype(), header.get_content_type()
    if maintype == "multipart":
        boundary = header.get_boundary()
        if boundary is None or cte not in ("", *_ENCODED_MESSAGE_CTES):
            return
        default = "message/rfc822" if content_type == "multipart/digest" else "text/plain"
        _walk_multipart(raw, body_start, end, boundary, default, boundaries, cuts, payloads, stored)
    elif content_type in ("message/rfc822", "message/global"):
        if cte in ("", *_ENCODED_MESSAGE_CTES):
            # An attached message counts as a level of nesting, as a multipart does.
            inner = (*boundaries, None)
            _walk_entity(raw, body_start, end, "text/plain", inner, cuts, payloads, stored)
    elif cte == "base64":
        _cut_base64(raw, body_start, end, cuts, payloads, stored)


def _header_fields(raw: bytes, start: int, end: int) -> tuple[dict[str, list[str]], int] | None:
    """The entity's fields by lower-cased name (unfolded values) and where its body starts, or None."""
    fields: dict[str, list[str]] = {}
    name = None
    position = start
    while position < end:
        newline = raw.find(b"\n", position, end)
        if newline < 0:
            return None  # no body: nothing to cut
        line = raw[position:newline]
        position = newline + 1
        if line in (b"", b"\r"):
            return fields, position
        if line[:1] in (b" ", b"\t"):
            if name is None:
                return None
            fields[name][-1] += _text(line)
            continue
        match = _HEADER_NAME.match(line)
        if match is None:
            return None
        name = match.group()[:-1].decode("ascii").lower()
        fields.setdefault(name, []).append(_text(line[match.end() :]))
    return None


def _text(line: bytes) -> str:
    # Undecodable bytes are kept as themselves, as the email package reads them.
    return line.rstrip(b"\r").decode("ascii", "surrogateescape")


def _walk_multipart(raw, start, end, boundary, default_type, boundaries, cuts, payloads, stored) -> None:
    if boundary in boundaries or not boundary:
        return
    try:
        # A boundary decoded from RFC 2231 to other characters is not a line any reader would match.
        separator = boundary.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return
    delimiters = _delimiter_lines(raw, start, end, separator)
    if not delimiters or delimiters[-1][2] is False:
        return  # no parts, or no close delimiter: left as it is
    if any(closing for _, _, closing in delimiters[:-1]):
        return  # parts after the close delimiter: another reader may see them
    inner = (*boundaries, boundary)
    for (_, after, _), (line_start, _, _) in zip(delimiters, delimiters[1:], strict=False):
        _walk_entity(raw, after, line_start, default_type, inner, cuts, payloads, stored)


def _delimiter_lines(raw: bytes, start: int, end: int, boundary: bytes) -> list[tuple[int, int, bool]]:
    """Each delimiter line of the boundary: its start, the end of its line ending, whether it closes.

    As the email package's parser: `--boundary`, optionally `--`, then spaces or tabs only.
    """
    separator = b"--" + boundary
    found = []
    position = start
    while True:
        at = raw.find(separator, position, end)
        if at < 0:
            return found
        position = at + len(separator)
        if at != start and raw[at - 1] != 0x0A:
            continue
        newline = raw.find(b"\n", position, end)
        line_end = end if newline < 0 else newline + 1
        rest = raw[position:line_end].rstrip(b"\r\n")
        closing = rest.startswith(b"--")
        if closing:
            rest = rest[2:]
        if rest.strip(b" \t"):
            continue
        found.append((at, line_end, closing))
        position = line_end


def _cut_base64(raw, start, end, cuts, payloads, stored) -> None:
    """Record a cut for the body at raw[start:end] if it is canonical base64 of a payload kept elsewhere."""
    # The line endings after the last line stay (as does the one before a delimiter, part of it).
    text = raw[start:end].rstrip(b"\r\n")
    if len(text) < MIN_BODY_BYTES:
        return
    newline = text.find(b"\n")
    if newline < 0:
        line, eol = len(text), b""
    else:
        eol = b"\r\n" if text[newline - 1 : newline] == b"\r" else b"\n"
        line = newline - len(eol) + 1
    if not _BASE64_LINE.fullmatch(text[:line]):
        return
    try:
        # The lenient decoder skips the line endings itself; re-encoding below is the strict check.
        payload = binascii.a2b_base64(text)
    except binascii.Error:
        return
    if _encode(payload, line, eol) != text:
        return
    sha256 = hashlib.sha256(payload).hexdigest()
    if stored(sha256):
        payloads[sha256] = payload
        cuts.append(_Cut(start, start + len(text), sha256, line, _EOL_NAMES[eol]))


def _encode(payload: bytes, line: int, eol: bytes) -> bytes:
    encoded = binascii.b2a_base64(payload, newline=False)
    if not eol or len(encoded) <= line:
        return encoded
    return eol.join(encoded[i : i + line] for i in range(0, len(encoded), line))


# --- restoring ---


def _read_header(text: bytes) -> dict:
    try:
        header = json.loads(text)
        parts = header["parts"]
        valid = (
            isinstance(header["size"], int)
            and _SHA256_HEX.fullmatch(header["sha256"])
            and isinstance(parts, list)
            and all(
                isinstance(cut["at"], int)
                and cut["at"] >= 0
                and isinstance(cut["bytes"], int)
                and isinstance(cut["line"], int)
                and cut["line"] > 0
                and cut["eol"] in _EOLS
                and _SHA256_HEX.fullmatch(cut["sha256"])
                for cut in parts
            )
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise RestoreError(
            f"compacted raw mail damaged: unreadable X-InboxHub-Compacted line ({exc})"
        ) from exc
    if not valid:
        raise RestoreError("compacted raw mail damaged: unreadable header line")
    return header


def _load(load: Callable[[str], bytes], sha256: str) -> bytes:
    try:
        payload = load(sha256)
    except Exception as exc:
        raise RestoreError(f"the attachment with sha256 {sha256} could not be loaded: {exc!r}") from exc
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise RestoreError(
            f"the attachment with sha256 {sha256} could not be loaded: got {type(payload).__name__}"
        )
    if hashlib.sha256(payload).hexdigest() != sha256:
        raise RestoreError(f"the attachment with sha256 {sha256} has changed: its bytes have another sha256")
    return bytes(payload)
