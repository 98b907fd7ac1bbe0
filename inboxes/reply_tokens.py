"""Reply tokens: `<local>+<token>@…` addresses that thread a reply to its conversation (G3, H3).

A token is the conversation id and an HMAC of the account and conversation,
in lower-case letters and digits so mail servers that fold the case of local
parts keep it intact. A token that does not verify is ignored, never trusted.
"""

import re

from django.utils.crypto import constant_time_compare, salted_hmac

_SALT = "inboxes.reply_tokens"
_DIGEST_LENGTH = 24  # 96 bits of HMAC-SHA256
_TOKEN = re.compile(rf"^c(\d{{1,18}})x([0-9a-f]{{{_DIGEST_LENGTH}}})$")


def _digest(account_id: int, conversation_id: int) -> str:
    return salted_hmac(_SALT, f"{account_id}:{conversation_id}", algorithm="sha256").hexdigest()[
        :_DIGEST_LENGTH
    ]


def make_reply_token(conversation) -> str:
    """The token for replies to this conversation."""
    return f"c{conversation.pk}x{_digest(conversation.account_id, conversation.pk)}"


def verify_reply_token(account_id: int, token: str) -> int | None:
    """The conversation id the token was made for in this account, or None when it does not verify."""
    found = _TOKEN.match((token or "").strip().lower())
    if found is None:
        return None
    conversation_id = int(found.group(1))
    if not constant_time_compare(found.group(2), _digest(account_id, conversation_id)):
        return None
    return conversation_id


def reply_address(conversation, address: str) -> str:
    """The fallback address with this conversation's token: `support+c12x…@acme.inbox.example`."""
    local, _, domain = address.rpartition("@")
    return f"{local}+{make_reply_token(conversation)}@{domain}"
