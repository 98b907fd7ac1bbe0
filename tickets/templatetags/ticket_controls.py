"""A conversation page's ticket controls: its priority and owner, for a member who may act (H4).

A tag of the tickets app, so the conversation page (inboxes, below tickets) shows them without
importing tickets' choices.
"""

from django import template

from tickets.forms import ticket_owner_choices
from tickets.models import Ticket, TicketDefaults

register = template.Library()


@register.inclusion_tag("tickets/partials/ticket_controls.html", takes_context=True)
def ticket_controls(context: template.Context, ticket: Ticket) -> dict:
    return {
        "ticket": ticket,
        "priorities": TicketDefaults.Priority.choices,
        "owners": ticket_owner_choices(ticket.account_id),
        "current_account": context["current_account"],
        "csrf_token": context.get("csrf_token"),
    }
