"""How long ago, as the conversation list shows it: "now", "5 min", "3 h", "2 d", then the date (H1)."""

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.html import format_html
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
