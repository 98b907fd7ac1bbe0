"""The Automation tab of the fallback address editor (C10, D1–D8), with its dry run."""

from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from channels_conn.settings_tabs import open_tab, save_tab
from inboxhub.tenancy import MemberRequest, member_required
from routing.engine import plan_for
from routing.forms import FREE_SEAT_NOTE, AssignmentRuleForm
from routing.permissions import routing_refusal
from routing.selectors import assignment_rule_for, dry_run
from routing.services import update_assignment_rule

TRY = "try"


@require_http_methods(["GET", "POST"])
@member_required
def edit(request: MemberRequest, subdomain: str, inbox_id: int) -> HttpResponse:
    tab = open_tab(request, inbox_id, "automation")
    rule = assignment_rule_for(tab.inbox)
    refusal = routing_refusal(request.member)
    # D1: an editor without a paid seat sees the tab read-only, and the server refuses the change.
    data = request.POST if request.method == "POST" and not refusal else None
    form = AssignmentRuleForm(data, instance=rule, account=request.account, read_only=bool(refusal))
    trial = None
    if data is not None and not form.is_valid() and _names_a_stranger(form):
        # A2: a member or team id that is not this account's answers as a missing page, as in a URL.
        raise Http404("No such member or team")
    if data is not None and data.get("action") == TRY:
        # Try these rules: replay recent conversations against the form as typed; nothing is saved.
        if form.is_valid():
            trial = dry_run(tab.inbox, plan_for(request.account.pk, **_plan_fields(form.cleaned_data)))
    elif (
        data is not None
        and form.is_valid()
        and save_tab(
            request,
            form,
            lambda: update_assignment_rule(
                rule, **{k: form.cleaned_data[k] for k in form.Meta.fields}, by=request.member
            ),
            saved=f"Automatic assignment for {tab.inbox.name} was saved.",
        )
    ):
        return redirect("automation:edit", subdomain, tab.inbox.pk)
    status = 403 if request.method == "POST" and refusal else 400 if form.errors else 200
    context = tab.context(form=form, refusal=refusal, free_seat_note=FREE_SEAT_NOTE, trial=trial)
    return render(request, "routing/automation.html", context, status=status)


def _names_a_stranger(form: AssignmentRuleForm) -> bool:
    return any(form.has_error(name, code="invalid_choice") for name in ("members", "teams"))


def _plan_fields(cleaned: dict) -> dict:
    return {name: cleaned[name] for name in ("assign_to", "only_available", "capacity", "members", "teams")}
