"""Images a mail carries inline (`cid:`), shown in its sandboxed HTML through signed URLs (H2).

The mail's HTML is its own sandboxed document (views.MAIL_HTML_CSP), and its
image requests must not depend on the session. Each `cid:` source that names
an image part of the message is swapped, when the document is served, for a
URL signed for that part and valid for SIGNED_URL_SECONDS: a member who could
open the document can load its images, nobody can guess another's, and the
stored HTML keeps `cid:`. The document's `img-src` allows these URLs (and
remote images only once the agent asks for them).
"""

import html
import re
from urllib.parse import unquote

from django.core import signing
from django.urls import reverse

from inboxes.models import Attachment, Message

SIGNED_URL_SECONDS = 3600
INLINE_IMAGE_TYPES = frozenset(["image/png", "image/jpeg", "image/gif", "image/webp"])
_SALT = "inboxes.inline-image"
# The sanitizer's serializer writes every attribute in double quotes, with `"` and `&` escaped, and
# `<` in text as `&lt;`: an `<img` here is a real tag and a `src="…"` in it a real attribute.
_CID_SOURCE = re.compile(r'(<img\b[^>]*?\ssrc=")cid:([^"]*)(")', re.IGNORECASE)


def with_inline_images(message: Message) -> str:
    """The message's sanitized HTML with each `cid:` image of its own swapped for a signed URL."""
    if "cid:" not in message.html.lower():
        return message.html
    images = {
        attachment.content_id.lower(): attachment
        for attachment in message.attachments.all()
        if attachment.content_id and attachment.content_type in INLINE_IMAGE_TYPES
    }

    def swap(found: re.Match) -> str:
        content_id = unquote(html.unescape(found.group(2))).strip("<>").lower()
        attachment = images.get(content_id)
        if attachment is None:
            return found.group(0)
        return found.group(1) + html.escape(signed_url(attachment)) + found.group(3)

    return _CID_SOURCE.sub(swap, message.html)


def url_prefix() -> str:
    """The path every signed image URL starts with: the one place a mail document's images may come from."""
    marker = "-"
    return reverse("inline_images:image", args=[marker]).removesuffix(f"{marker}/")


def signed_url(attachment: Attachment) -> str:
    token = signing.dumps([attachment.account_id, str(attachment.pk)], salt=_SALT, compress=False)
    return reverse("inline_images:image", args=[token])


def attachment_for(token: str) -> tuple[int, str] | None:
    """(account id, attachment id) of a token signed within SIGNED_URL_SECONDS, else None."""
    try:
        account_id, attachment_id = signing.loads(token, salt=_SALT, max_age=SIGNED_URL_SECONDS)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    return account_id, attachment_id
