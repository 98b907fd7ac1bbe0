"""The tickets page: a pipeline's tickets by stage, with their stage changed in place (H4, C11);
a ticket's priority and owner, changed from its conversation's page."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from inboxes.permissions import require_inbox_action, visible_inboxes
from inboxhub.models import Membership
from inboxhub.tenancy import MemberRequest, member_required
from tickets import selectors
from tickets.forms import MoveTicketForm, TicketFilterForm, TicketOwnerForm, TicketPriorityForm
from tickets.services import create_ticket, move_ticket, set_ticket_owner, set_ticket_priority

PAGE = "tickets/board.html"


@require_GET
@member_required
def board(request: MemberRequest, subdomain: str) -> HttpResponse:
    members = Membership.joined_members(request.account)
    form = TicketFilterForm(request.GET, account=request.account, members=members)
    if not form.is_valid() and "pipeline" in form.errors:
        raise Http404("No such pipeline")  # another account's pipeline, as a missing one (A2)
    pipelines = list(form.fields["pipeline"].queryset)
    pipeline = form.cleaned_data.get("pipeline") or next(iter(pipelines), None)
    context = {"form": form, "pipelines": pipelines, "pipeline": pipeline, "page": None}
    if pipeline is not None:
        inboxes = list(visible_inboxes(request.member))
        context |= {
            "page": selectors.ticket_page(
                request.member,
                pipeline,
                owner=form.owner_filter(),
                priority=form.cleaned_data.get("priority") or "",
                cursor=request.GET.get("after"),
            ),
            "stages": list(selectors.stages_of(pipeline)),
            "actable_inbox_ids": selectors.actable_inbox_ids(request.member, inboxes),
            "next": request.get_full_path(),
        }
    return render(request, PAGE, context)


@require_POST
@member_required
@vary_on_headers("HX-Request")
def move(request: MemberRequest, subdomain: str, ticket_id: int) -> HttpResponse:
    tickets = selectors.visible_tickets(request.member).select_related(
        "pipeline", "stage", "owner__user", "conversation__contact", "conversation__inbox"
    )
    ticket = get_object_or_404(tickets, pk=ticket_id)
    form = MoveTicketForm(request.POST, account=request.account)
    if not form.is_valid():
        raise Http404("No such stage")  # another account's stage, as a missing one (A2)
    error = None
    try:
        move_ticket(ticket, form.cleaned_data["stage"], by=request.member)
    except ValidationError as exc:
        error = exc.messages[0]
    board_url = reverse("tickets:board", args=[subdomain])
    back = request.POST.get("next", "")
    back = back if back.startswith(board_url) else f"{board_url}?pipeline={ticket.pipeline_id}"
    if request.htmx:
        context = {
            "ticket": ticket,
            "stages": list(selectors.stages_of(ticket.pipeline)),
            "actable_inbox_ids": {ticket.conversation.inbox_id},
            "next": back,
            "row_error": error,
        }
        return render(request, f"{PAGE}#ticket-row", context)
    if error:
        messages.error(request, error)
    return redirect(back)


@require_POST
@member_required
def create(request: MemberRequest, subdomain: str, conversation_id: int) -> HttpResponse:
    conversations = request.account.conversations.filter(inbox__in=visible_inboxes(request.member))
    conversation = get_object_or_404(conversations.select_related("inbox", "assignee"), pk=conversation_id)
    try:
        create_ticket(conversation, by=request.member)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, "This conversation is now a ticket.")
    return redirect("inboxes:thread", subdomain, conversation.pk)


def _ticket_to_change(request: MemberRequest, ticket_id: int):
    """A ticket the member may change: 404 for another account's or one in an inbox they cannot see,
    403 (before reading the form) for one in an inbox they see but may not act in (B6)."""
    tickets = selectors.visible_tickets(request.member).select_related("conversation__inbox", "owner__user")
    ticket = get_object_or_404(tickets, pk=ticket_id)
    require_inbox_action(request.member, ticket.conversation.inbox)
    return ticket


@require_POST
@member_required
def set_priority(request: MemberRequest, subdomain: str, ticket_id: int) -> HttpResponse:
    ticket = _ticket_to_change(request, ticket_id)
    form = TicketPriorityForm(request.POST)
    if form.is_valid():
        set_ticket_priority(ticket, form.cleaned_data["priority"], by=request.member)
        messages.success(request, f"Priority set to {ticket.get_priority_display()}.")
    else:
        messages.error(request, "Choose one of the priorities.")
    return redirect("inboxes:thread", subdomain, ticket.conversation_id)


@require_POST
@member_required
def set_owner(request: MemberRequest, subdomain: str, ticket_id: int) -> HttpResponse:
    ticket = _ticket_to_change(request, ticket_id)
    form = TicketOwnerForm(request.POST, account=request.account)
    if not form.is_valid():
        raise Http404("No such member")  # another account's member, as a missing one (A2)
    owner = form.cleaned_data["owner"]
    set_ticket_owner(ticket, owner, by=request.member)
    said = f"{owner.user} owns this ticket now." if owner else "This ticket has no owner now."
    messages.success(request, said)
    return redirect("inboxes:thread", subdomain, ticket.conversation_id)
