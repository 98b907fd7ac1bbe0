"""A member's own Notifications page: mail about conversations assigned to them while away (issue 17)."""

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from inboxhub.notifications import SIGNED_IN_WINDOW, set_assignment_notifications
from inboxhub.tenancy import MemberRequest, member_required


class NotificationSettingsForm(forms.Form):
    notify_on_assignment = forms.BooleanField(
        required=False,
        label="Email me when a conversation is assigned to me while I am away or not signed in",
    )


@require_http_methods(["GET", "POST"])
@member_required
def notification_settings(request: MemberRequest, subdomain: str) -> HttpResponse:
    # Only the poster's own setting: there is no member parameter to forge.
    member = request.member
    if request.method == "POST":
        form = NotificationSettingsForm(request.POST)
        if form.is_valid():
            enabled = form.cleaned_data["notify_on_assignment"]
            set_assignment_notifications(member, enabled, by=member)
            messages.success(request, "Saved: assignment emails are " + ("on." if enabled else "off."))
            return redirect("notification_settings", subdomain)
    else:
        form = NotificationSettingsForm(initial={"notify_on_assignment": member.notify_on_assignment})
    minutes = int(SIGNED_IN_WINDOW.total_seconds() // 60)
    return render(request, "inboxhub/notifications.html", {"form": form, "window_minutes": minutes})
