"""Paths and query strings in logs with their secret tokens masked (issue 16).

Password-reset and invite links (`/password/reset/<uid>/<token>/`,
`/invite/<uid>/<token>/`), a mail's inline images (`/inline-images/<token>/`)
and the from-address verification link (`?token=`) carry the secret itself:
whoever reads an access log must not be able to use them. The path is kept,
with the token replaced, so a request can still be told from another.
"""

import logging
import re

MASK = "[token]"

_PATTERNS = [
    # Django's confirm view swaps the token for `set-password` after its first request: that one is no secret.
    (re.compile(r"(/(?:password/reset|invite)/[^/\s?#\"]+/)(?!set-password/)[^/\s?#\"]+"), rf"\1{MASK}"),
    (re.compile(r"(/inline-images/)[^/\s?#\"]+"), rf"\1{MASK}"),
    # The sign-up link that confirms a founder's address (inboxhub/signup_mail.py).
    (re.compile(r"(/signup/verify/)[^/\s?#\"]+"), rf"\1{MASK}"),
    (re.compile(r"([?&;]token=)[^&;\s#\"]+"), rf"\1{MASK}"),
]


def mask_tokens(text: str) -> str:
    """`text` (a path, a request line, a Referer, a log message) with every link token replaced."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class MaskTokens(logging.Filter):
    """For a log handler: the message, once formatted with its arguments, gets its tokens masked.

    On the handler rather than a logger, so records that propagate from any
    logger (`django.request`'s "Not Found: /invite/…") pass through it too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_tokens(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
