"""Who else is here (issue 17): the thread page's heartbeat, and the composer's answers when a reply
crossed another or was posted twice."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import reselect, reswap, retarget

from inboxes import mail_display, presence, replies
from inboxes.models import Conversation, Presence
from inboxes.permissions import NOT_ON_ACCESS_LIST, can_act_in_inbox, visible_inboxes
from inboxhub.tenancy import MemberRequest, member_required

STATES = {Presence.State.VIEWING.value, Presence.State.TYPING.value, presence.GONE}


@require_POST
@member_required
def heartbeat(request: MemberRequest, subdomain: str, conversation_id: int) -> HttpResponse:
    """Note the member on the thread (viewing, typing, or gone) and answer with the others there now."""
    visible = request.account.conversations.filter(inbox__in=visible_inboxes(request.member))
    conversation = get_object_or_404(visible.select_related("inbox"), pk=conversation_id)
    if not can_act_in_inbox(request.member, conversation.inbox):
        # B6: an admin off the access list reads the thread but writes nothing to it, presence included.
        raise PermissionDenied(NOT_ON_ACCESS_LIST.format(inbox=conversation.inbox.name))
    state = request.POST.get("state", "")
    if state not in STATES:
        return HttpResponseBadRequest("state is viewing, typing or gone")
    if state == presence.GONE:
        presence.leave_conversation(conversation, by=request.member)
        return HttpResponse(status=204)
    presence.record_presence(conversation, state=state, by=request.member)
    context = {"others": presence.others_here(conversation, viewer=request.member)}
    response = render(request, "inboxes/partials/presence.html", context)
    response["Cache-Control"] = "private, no-store"
    return response


def posted_reply_ids(request: MemberRequest) -> tuple[int | None, int]:
    """The composer's `seen_reply` (None when absent: no check) and `confirmed_reply` (0 when absent)."""
    seen = request.POST.get("seen_reply", "")
    confirmed = request.POST.get("confirmed_reply", "")
    return (int(seen) if seen.isdigit() else None), (int(confirmed) if confirmed.isdigit() else 0)


def crossed_answer(
    request: MemberRequest, conversation: Conversation, crossed: presence.ReplyCrossed, *, body: str
) -> HttpResponse:
    """Another member replied since the agent started: ask before sending, the draft kept.

    htmx: only the warning region of the form is replaced, so the draft and its chosen files stay
    as they are in the browser. Without JavaScript: a page with their reply and the draft.
    """
    seen_reply, _ = posted_reply_ids(request)
    context = replies.composer_context(conversation, request.member)
    context["composer"]["seen_reply"] = seen_reply
    context |= {"conversation": conversation, "reply_body": body, "reply_crossed": crossed}
    if request.htmx:
        response = render(request, "inboxes/partials/composer.html#reply-warning", context)
        response = retarget(response, "#reply-warning")
        return reselect(reswap(response, "outerHTML"), "#reply-warning")
    crossed_reply = conversation.messages.filter(account=request.account).select_related("sent_by__user")
    crossed_reply = crossed_reply.prefetch_related("attachments").get(pk=crossed.reply.pk)
    mail_display.prepare([crossed_reply])
    context |= {"message": crossed_reply, "crossed_in_page": True, "files_dropped": bool(request.FILES)}
    return render(request, "inboxes/reply_crossed.html", context, status=409)


def already_sent_answer(
    request: MemberRequest, conversation: Conversation, already: presence.ReplyAlreadySent
) -> HttpResponse:
    """The same reply posted twice: the first post's reply is the answer; nothing is sent again."""
    if request.htmx:
        context = replies.composer_context(conversation, request.member) | {"conversation": conversation}
        return render(request, "inboxes/partials/composer.html", context)
    messages.success(request, f"Your reply to {conversation.contact.email} is on its way.")
    thread_url = reverse("inboxes:thread", args=(request.account.subdomain, conversation.pk))
    return redirect(f"{thread_url}#message-{already.reply.pk}")
