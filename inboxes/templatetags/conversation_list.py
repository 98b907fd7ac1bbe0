"""How long ago, as the conversation list shows it: "now", "5 min", "3 h", "2 d", then the date (H1)."""

import functools
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
ROWS_KEPT = 2048  # per web process: about 3 MB


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
    """`<time>` with the short age, the machine-readable moment and the full date as its title."""
    return _time_element(moment, age(moment))


@register.simple_tag
def conversation_rows(conversations, thread_base: str, show_inbox: bool) -> SafeString:
    """The list's rows (H1), built here rather than by the template language: fifty rows of a dozen
    lookups each were the larger part of a list request's time (bench/inbox.py)."""
    return format_html_join("", "{}", ((_row(c, thread_base, show_inbox),) for c in conversations))


def _row(conversation, thread_base: str, show_inbox: bool) -> str:
    contact = conversation.contact
    if show_inbox:
        who, who_muted = conversation.inbox.name, False
    elif conversation.assignee_id:
        user = conversation.assignee.user
        who, who_muted = user.full_name or user.email, False
    else:
        who, who_muted = "Unassigned", True
    moment = conversation.last_message_at
    return _row_html(
        conversation.pk,
        contact.name or contact.email,
        contact.email,
        conversation.subject or "(no subject)",
        conversation.message_count,
        conversation.snippet or "",
        who,
        who_muted,
        conversation.is_unread,
        moment,
        age(moment),
        timezone.get_current_timezone_name(),
        thread_base,
    )


# A row is the same text for every viewer who sees the same values, so each web process keeps the
# latest rows it built: after a change, the open lists that refetch (issue 17, live updates) build
# only the rows that changed. The key is every value the row shows, its age in words included.
@functools.lru_cache(maxsize=ROWS_KEPT)
def _row_html(
    pk, name, email, subject, count, snippet, who, who_muted, unread, moment, age_text, tz_name, base
):
    who_cell = (
        format_html('<td class="who"><span class="muted">{}</span></td>', who)
        if who_muted
        else format_html('<td class="who">{}</td>', who)
    )
    return format_html(
        '<tr id="conversation-{pk}" data-at="{at}"{row_class}>'
        '<td class="contact">{dot}{name}<span class="sub">{email}</span></td>'
        '<td class="subject"><a href="{base}{pk}/">{subject}</a>{count}'
        '<span class="sub snippet">{snippet}</span></td>'
        '{who}<td class="age">{age}</td></tr>\n',
        pk=pk,
        at=int(moment.timestamp() * 1_000_000),  # the list's order, for rows a live refresh moves (H5)
        row_class=format_html(' class="{}"', "unread") if unread else "",
        dot=UNREAD_DOT if unread else "",
        name=name,
        email=email,
        base=base,
        subject=subject,
        count=format_html(MESSAGE_COUNT, count) if count > 1 else "",
        snippet=snippet,
        who=who_cell,
        age=_time_element(moment, age_text),
    )


def _time_element(moment: datetime, age_text: str) -> SafeString:
    local = timezone.localtime(moment)
    full = f"{local:%a} {local.day} {local:%b %Y}, {local:%H:%M}"
    return format_html('<time datetime="{}" title="{}">{}</time>', local.isoformat(), full, age_text)


UNREAD_DOT = format_html(
    '<span class="unread-dot" aria-hidden="true"></span><span class="visually-hidden">{}</span> ', "Unread"
)
MESSAGE_COUNT = ' <span class="message-count">{}<span class="visually-hidden"> messages</span></span>'
