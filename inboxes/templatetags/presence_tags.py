"""The thread page's "who else is here" region (issue 17), filled by static/js/presence.js."""

from django import template
from django.urls import reverse

from inboxes import presence
from inboxes.models import Conversation

register = template.Library()


@register.inclusion_tag("inboxes/partials/presence_region.html")
def presence_region(conversation: Conversation, subdomain: str) -> dict:
    return {
        "url": reverse("inboxes:presence", args=[subdomain, conversation.pk]),
        # Read at render: a test may speed the page up; the server stays the one source.
        "heartbeat_seconds": presence.HEARTBEAT_SECONDS,
        "typing_seconds": presence.TYPING_SECONDS,
    }
