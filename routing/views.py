"""The Automation tab of the fallback address editor (C10, D1–D5)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from channels_conn.models import FallbackAddress
from inboxhub.lib.forms import add_service_errors
from inboxhub.permissions import require
from inboxhub.tenancy import MemberRequest, member_required
from routing.forms import FREE_SEAT_NOTE, AssignmentRuleForm
from routing.permissions import routing_refusal
from routing.selectors import assignment_rule_for
from routing.services import update_assignment_rule


@require_http_methods(["GET", "POST"])
@member_required
def edit(request: MemberRequest, subdomain: str, inbox_id: int) -> HttpResponse:
    require(request.member, "manage_inboxes")
    inbox = get_object_or_404(request.account.inboxes, pk=inbox_id)
    rule = assignment_rule_for(inbox)
    refusal = routing_refusal(request.member)
    # D1: an editor without a paid seat sees the tab read-only, and the server refuses the change.
    data = request.POST if request.method == "POST" and not refusal else None
    form = AssignmentRuleForm(data, instance=rule, account=request.account, read_only=bool(refusal))
    if data is not None and form.is_valid():
        try:
            update_assignment_rule(
                rule, **{k: form.cleaned_data[k] for k in form.Meta.fields}, by=request.member
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Automatic assignment for {inbox.name} was saved.")
            return redirect("automation:edit", subdomain, inbox.pk)
    status = 403 if request.method == "POST" and refusal else 400 if form.errors else 200
    context = {
        "inbox": inbox,
        "fallback_address": FallbackAddress.objects.filter(channel__inbox=inbox).first(),
        "active_tab": "automation",
        "form": form,
        "refusal": refusal,
        "free_seat_note": FREE_SEAT_NOTE,
    }
    return render(request, "routing/automation.html", context, status=status)
