"""Live updates (H5): the poll an open list or thread makes every second or two, and the thread's news.

An idle tab asks `poll` with its token and the counter value it shows (`If-None-Match`): `304`
when nothing changed, read without the session or any table but the counter (`inboxes/live.py`).
On a change the list asks its own page again as a fragment (rows, view tabs and sidebar counts:
`live.LIST_TARGET`), the thread asks `thread_news` for the messages after the last one it shows and
its side panels; both check membership and access like the page, and renew the token.
"""

import re
from datetime import timedelta

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from inboxes import live, mail_display, selectors
from inboxes.models import Conversation, Message
from inboxes.permissions import visible_inboxes
from inboxes.read_state import mark_read
from inboxes.thread_context import thread_controls
from inboxhub.tenancy import MemberRequest, member_required

# A message that commits after a later one was shown (a long ingest, a slow reply) still arrives:
# the thread's news goes back this far before the last message shown; the page skips what it has.
LATE_COMMIT = timedelta(minutes=5)


@require_GET
def poll(request: HttpRequest, subdomain: str) -> HttpResponse:
    """`304` while the token's counter still has the value the page shows, else `200` with the new one.

    `PollFirst` answers it before the middleware stack; this view answers it when that is not set up.
    """
    named = live.read_token(request.GET.get("t", ""), subdomain)
    if named is None:
        # Expired, forged or another account's: the page refreshes through its checked view.
        return _no_store(HttpResponse(status=403))
    try:
        value = live.stamp(*named)
    except redis.RedisError:
        return _no_store(HttpResponse(status=503, headers={"Retry-After": "10"}))
    etag = f'"{value}"'
    if request.headers.get("If-None-Match") == etag:
        return _no_store(HttpResponse(status=304, headers={"ETag": etag}))
    return _no_store(HttpResponse(str(value), content_type="text/plain", headers={"ETag": etag}))


class PollFirst:
    """Middleware, first in MIDDLEWARE: answers the poll before the rest of the stack runs (H5).

    The poll is the most frequent request (every open tab, every second) and needs none of the
    stack: no session, user, CSRF, messages or CSP; skipping it halves its CPU (bench/live.py).
    The host is still checked against ALLOWED_HOSTS, and plain HTTP goes the normal way when
    SECURE_SSL_REDIRECT wants HTTPS.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.path = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.path is None:
            marker = "subdomainmarker"
            pattern = re.escape(reverse("inboxes:live", args=[marker])).replace(
                marker, "(?P<subdomain>[^/]+)"
            )
            self.path = re.compile(f"^{pattern}$")
        match = self.path.match(request.path_info)
        if (
            match is None
            or request.method != "GET"
            or (settings.SECURE_SSL_REDIRECT and not request.is_secure())
        ):
            return self.get_response(request)
        request.get_host()  # DisallowedHost (400) for a host not in ALLOWED_HOSTS
        response = poll(request, match["subdomain"])
        response["X-Content-Type-Options"] = "nosniff"
        return response


def _no_store(response: HttpResponse) -> HttpResponse:
    # The page sets If-None-Match itself; a browser cache answering for it would hide the 304.
    response["Cache-Control"] = "no-store"
    if response.status_code != 304:
        # Answered before CommonMiddleware: without a length the server would chunk a few bytes.
        response["Content-Length"] = str(len(response.content))
    return response


def _cursor(message: Message) -> str:
    return f"{message.created_at.isoformat()}_{message.pk}"


def news_since(conversation: Conversation, after: str | None, *, size: int = selectors.THREAD_PAGE_SIZE):
    """The newest messages from a little before `after` on (at most `size`), oldest first."""
    messages = Message.objects.filter(account_id=conversation.account_id, conversation=conversation)
    cursor = selectors._parse_cursor(after)
    if cursor is not None:
        messages = messages.filter(created_at__gte=cursor[0] - LATE_COMMIT)
    page = list(
        messages.select_related("claimed_member__user")
        .prefetch_related("attachments")
        .order_by("-created_at", "-pk")[:size]
    )
    page.reverse()
    return page


@require_GET
@member_required
@live.follow
def thread_news(request: MemberRequest, subdomain: str, conversation_id: int) -> HttpResponse:
    """What changed on an open thread: its recent messages, status and side panels; never the composer."""
    conversation = get_object_or_404(
        request.account.conversations.filter(inbox__in=visible_inboxes(request.member)).select_related(
            "contact", "inbox", "assignee__user", "ticket__stage", "ticket__pipeline", "ticket__owner__user"
        ),
        pk=conversation_id,
    )
    after = request.GET.get("after")
    messages = news_since(conversation, after)
    mark_read(conversation, by=request.member)  # the agent is reading it as it arrives (H1)
    mail_display.prepare(messages)
    context = {"conversation": conversation, "messages": messages}
    context["after"] = _cursor(messages[-1]) if messages else after or ""
    context |= thread_controls(request.member, conversation)
    context["assignable"] = selectors.assignable_members(conversation.inbox) if context["can_act"] else []
    return render(request, "inboxes/live_thread.html", context)
