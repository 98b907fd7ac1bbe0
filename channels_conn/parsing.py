"""Read a raw message into what the pipeline needs: one module, one entry point.

`parse_message(raw)` never raises on bad MIME; it returns best-effort fields
and lists what it could not read in `defects`.
"""

from dataclasses import dataclass, field
from datetime import datetime


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


def parse_message(raw: bytes) -> ParsedMessage:
    raise NotImplementedError("filled in by the parsing work of the ingestion issue")
