"""The Tickets tab of the fallback address editor (C11)."""

from django import forms
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from channels_conn.settings_tabs import open_tab, save_tab
from inboxhub.permissions import require
from inboxhub.tenancy import MemberRequest, member_required
from routing.models import AssignmentRule
from tickets.forms import TicketDefaultsForm
from tickets.selectors import stages_of, ticket_defaults_for
from tickets.services import update_ticket_defaults

PANEL_FIELDS = ("pipeline", "stage", "priority", "owner_mode", "owner")


@require_http_methods(["GET", "POST"])
@member_required
def edit(request: MemberRequest, subdomain: str, inbox_id: int) -> HttpResponse:
    tab = open_tab(request, inbox_id, "tickets")
    inbox = tab.inbox
    defaults = ticket_defaults_for(inbox)
    # The plain-form way to see another pipeline's stages (no htmx): show them, save nothing.
    reloading = "show_stages" in request.POST
    if reloading:
        initial = {name: request.POST.get(name) for name in TicketDefaultsForm.Meta.fields}
        form = TicketDefaultsForm(initial=initial, instance=defaults, account=request.account)
    else:
        form = TicketDefaultsForm(request.POST or None, instance=defaults, account=request.account)
    if (
        form.is_bound
        and form.is_valid()
        and save_tab(
            request,
            form,
            lambda: update_ticket_defaults(
                defaults, **{k: form.cleaned_data[k] for k in form.Meta.fields}, by=request.member
            ),
            saved=f"Ticket settings for {inbox.name} were saved.",
        )
    ):
        return redirect("ticket_settings:edit", subdomain, inbox.pk)
    context = tab.context(
        form=form,
        # The summary beside "Edit ticket" shows what is saved, whatever the form holds.
        saved=ticket_defaults_for(inbox),
        assigning=AssignmentRule.objects.filter(inbox=inbox, enabled=True).exists(),
        panel_open=reloading or any(name in form.errors for name in PANEL_FIELDS),
        **_stage_field(form.chosen_pipeline(), form["stage"].value(), form["stage"].errors),
    )
    return render(request, "tickets/ticket_settings.html", context, status=400 if form.errors else 200)


class StagesQuery(forms.Form):
    pipeline = forms.ModelChoiceField(queryset=None, required=False)

    def __init__(self, *args, account, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["pipeline"].queryset = account.pipelines.all()


@require_GET
@member_required
def stages(request: MemberRequest, subdomain: str, inbox_id: int) -> HttpResponse:
    """The stage <select> for the pipeline picked in the Edit ticket panel (htmx swaps it in)."""
    require(request.member, "manage_inboxes")
    inbox = get_object_or_404(request.account.inboxes, pk=inbox_id)
    query = StagesQuery(request.GET, account=request.account)
    if not query.is_valid():
        raise Http404("No such pipeline")  # another account's pipeline, as a missing one (A2)
    pipeline = query.cleaned_data["pipeline"] or ticket_defaults_for(inbox).pipeline
    return render(request, "tickets/ticket_settings.html#stage-field", _stage_field(pipeline, None, []))


def _stage_field(pipeline, selected, errors) -> dict:
    return {"stages": stages_of(pipeline), "selected_stage": str(selected or ""), "stage_errors": errors}
