"""The machine mail samples of tests/fixtures/mail (bounces, auto-replies, list mail), filled in."""

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "mail"

BOUNCES = ("postfix_bounce", "exchange_ndr", "gmail_dsn", "exim_bounce", "exim_prose_bounce")
AUTO_REPLIES = ("exchange_oof", "gmail_vacation")


def machine_mail(
    name: str,
    *,
    to: str = "support@alpha.inbox.localhost",
    contact: str = "carol@customer.example",
    reply_id: str = "reply-1@alpha.inbox.localhost",
    reply_to: str = "support+c1x000000000000000000000000@alpha.inbox.localhost",
) -> bytes:
    """The sample `name` (without .eml) with its placeholders filled, lines ending in CRLF as on the wire."""
    text = (FIXTURES / f"{name}.eml").read_text()
    for placeholder, value in (
        ("@@TO@@", to),
        ("@@CONTACT@@", contact),
        ("@@REPLY_ID@@", reply_id),
        ("@@REPLY_TO@@", reply_to),
    ):
        text = text.replace(placeholder, value)
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()
