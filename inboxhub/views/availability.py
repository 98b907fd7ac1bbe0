"""The availability switch in the header: a member sets themselves Available or Away (D9)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from inboxhub.models import Membership
from inboxhub.notifications import note_seen
from inboxhub.services import set_availability
from inboxhub.tenancy import MemberRequest, member_required
from routing.backlog import assign_backlog_for

SWITCH = "inboxhub/partials/availability_switch.html#availability-switch"


def _back(request: MemberRequest) -> str:
    """The page the switch was on, if it is one of this site's; the inbox otherwise."""
    url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return reverse("inboxes:index", args=[request.account.subdomain])


@require_POST
@member_required
@vary_on_headers("HX-Request")
def set_my_availability(request: MemberRequest, subdomain: str) -> HttpResponse:
    # Only the poster's own availability: there is no member parameter to forge.
    member = request.member
    last_change = member.availability_changed_at
    try:
        set_availability(member, request.POST.get("availability", ""), by=member)
    except ValidationError as exc:
        error = exc.message_dict["availability"][0]
        if request.htmx:
            return render(request, SWITCH, {"next_url": _back(request), "error": error}, status=400)
        messages.error(request, error)
        return redirect(_back(request))
    changed = member.availability_changed_at != last_change
    if changed and member.availability == Membership.Availability.AVAILABLE:
        note_seen(member)  # present: what the backlog hands them now is not mailed to them (issue 17)
        # robust: the change is saved either way; a failing backlog is logged, and runs again next time.
        transaction.on_commit(lambda: assign_backlog_for(member), robust=True)
    if request.htmx:
        return render(request, SWITCH, {"next_url": _back(request), "changed": changed})
    return redirect(_back(request))
