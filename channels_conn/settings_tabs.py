"""The tabs of an inbox's fallback address editor: Configuration, Automation, Tickets (C1–C12).

Each tab's view opens the tab (who may, which inbox, the shared header) and
saves through its app's service with `save_tab`. The tabs belong to the
fallback address, so the helper lives with it, below routing and tickets.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404

from channels_conn.models import Channel, FallbackAddress
from inboxhub.lib.forms import add_service_errors
from inboxhub.permissions import require
from inboxhub.tenancy import MemberRequest

if TYPE_CHECKING:  # inboxes sit above channels in the layers: a name for the type checker only
    from inboxes.models import Inbox


@dataclass(frozen=True)
class Tab:
    inbox: "Inbox"
    fallback_address: FallbackAddress
    name: str

    def context(self, **more) -> dict:
        """What the header (channels_conn/partials/fallback_tabs.html) needs, and the tab's own."""
        return {
            "inbox": self.inbox,
            "fallback_address": self.fallback_address,
            "active_tab": self.name,
            **more,
        }


def open_tab(request: MemberRequest, inbox_id: int, name: str) -> Tab:
    """The tab of this account's inbox for an admin who may open inbox settings (B8); 404 for others' (A2)."""
    require(request.member, "manage_inboxes")
    inbox = get_object_or_404(request.account.inboxes, pk=inbox_id)
    fallback_address = get_object_or_404(
        FallbackAddress.objects.select_related("account", "channel__inbox"),
        account=request.account,
        channel__inbox=inbox,
        channel__kind=Channel.Kind.FALLBACK_EMAIL,
    )
    return Tab(inbox, fallback_address, name)


def save_tab(request: MemberRequest, form: forms.BaseForm, save: Callable[[], object], *, saved: str) -> bool:
    """Save through the service; its refusals show on the form, a success says `saved`. Whether it saved."""
    try:
        save()
    except ValidationError as exc:
        add_service_errors(form, exc)
        return False
    messages.success(request, saved)
    return True
