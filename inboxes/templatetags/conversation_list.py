"""How long ago, as the conversation list shows it: "now", "5 min", "3 h", "2 d", then the date (H1)."""

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

register = template.Library()

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
DAYS_SHOWN = 30


@register.filter
def age(moment: datetime | None, now: datetime | None = None) -> str:
    """The time since `moment` in the list's short units; past a month, the day it was."""
    if moment is None:
        return ""
    now = now or timezone.now()
    seconds = (now - moment).total_seconds()
    if seconds < MINUTE:
        return "now"
    if seconds < HOUR:
        return f"{int(seconds // MINUTE)} min"
    if seconds < DAY:
        return f"{int(seconds // HOUR)} h"
    if seconds < DAYS_SHOWN * DAY:
        return f"{int(seconds // DAY)} d"
    local = timezone.localtime(moment)
    return format_date(local, "j M" if local.year == timezone.localtime(now).year else "j M Y")


@register.simple_tag
def age_time(moment: datetime) -> SafeString:
    """`<time>` with the short age, the machine-readable moment and the full date as its title.

    One tag per row instead of three date filters: the list renders fifty of them.
    """
    local = timezone.localtime(moment)
    full = f"{local:%a} {local.day} {local:%b %Y}, {local:%H:%M}"
    return format_html('<time datetime="{}" title="{}">{}</time>', local.isoformat(), full, age(moment))


@register.simple_tag
def conversation_rows(conversations, thread_base: str, show_inbox: bool) -> SafeString:
    """The list's rows (H1), built here rather than by the template language: fifty rows of a dozen
    lookups each were the larger part of a list request's time (bench/inbox.py)."""
    return format_html_join("", "{}", ((_row(c, thread_base, show_inbox),) for c in conversations))


def _row(conversation, thread_base: str, show_inbox: bool) -> str:
    contact = conversation.contact
    unread = conversation.is_unread
    count = conversation.message_count
    if show_inbox:
        who = format_html('<td class="who">{}</td>', conversation.inbox.name)
    elif conversation.assignee_id:
        user = conversation.assignee.user
        who = format_html('<td class="who">{}</td>', user.full_name or user.email)
    else:
        who = format_html('<td class="who"><span class="muted">{}</span></td>', "Unassigned")
    return format_html(
        '<tr id="conversation-{pk}"{row_class}>'
        '<td class="contact">{dot}{name}<span class="sub">{email}</span></td>'
        '<td class="subject"><a href="{base}{pk}/">{subject}</a>{count}'
        '<span class="sub snippet">{snippet}</span></td>'
        '{who}<td class="age">{age}</td></tr>\n',
        pk=conversation.pk,
        row_class=format_html(' class="{}"', "unread") if unread else "",
        dot=UNREAD_DOT if unread else "",
        name=contact.name or contact.email,
        email=contact.email,
        base=thread_base,
        subject=conversation.subject or "(no subject)",
        count=format_html(MESSAGE_COUNT, count) if count > 1 else "",
        snippet=conversation.snippet or "",
        who=who,
        age=age_time(conversation.last_message_at),
    )


UNREAD_DOT = format_html(
    '<span class="unread-dot" aria-hidden="true"></span><span class="visually-hidden">{}</span> ', "Unread"
)
MESSAGE_COUNT = ' <span class="message-count">{}<span class="visually-hidden"> messages</span></span>'
