"""Whether a message was sent by a machine: a bounce, an auto-reply, list mail (RFC 3834, RFC 3464, RFC 2919).

Such mail must never set off anything automatic in return — an assignment, a
notification, an auto-reply — or two robots answer each other forever.
"""

from email.message import EmailMessage

_BOUNCE_SENDERS = ("mailer-daemon", "postmaster")
_AUTO_REPLY_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponse")
_BULK_PRECEDENCE = ("bulk", "junk", "list")


def automated_reason(message: EmailMessage, sender: str) -> str:
    """Why this message comes from a machine, in words for the thread; "" for a person's mail."""
    if message.get_content_type() == "multipart/report":
        report = str(message.get_param("report-type", "") or "").lower()
        return (
            "a delivery status notification (bounce)"
            if report == "delivery-status"
            else "an automatic report"
        )
    if sender.partition("@")[0].lower() in _BOUNCE_SENDERS:
        return f"a bounce from {sender}"
    auto_submitted = _header(message, "auto-submitted").lower()
    if auto_submitted and auto_submitted.split(";")[0].strip() != "no":
        return f"marked Auto-Submitted: {auto_submitted.split(';')[0].strip()}"
    if any(_header(message, name) for name in _AUTO_REPLY_HEADERS):
        return "an auto-reply"
    precedence = _header(message, "precedence").lower()
    if precedence in _BULK_PRECEDENCE:
        return f"marked Precedence: {precedence}"
    if _header(message, "list-id") or _header(message, "list-unsubscribe"):
        return "mail from a mailing list"
    return ""


def _header(message: EmailMessage, name: str) -> str:
    try:
        return " ".join(str(message.get(name, "") or "").split())
    except Exception:  # a header the parser cannot read says nothing about robots
        return ""
