"""The reply composer's endpoints: send a reply, retry one that failed (H3, B6, B7, C1, F2)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from inboxes import replies
from inboxes.models import Conversation, Message
from inboxes.permissions import can_act_in_inbox, visible_inboxes
from inboxhub.tenancy import MemberRequest, member_required


def _conversation(request: MemberRequest, conversation_id: int) -> Conversation:
    # Conversations of inboxes the member cannot see answer 404, as a missing one (B6, A2).
    visible = request.account.conversations.filter(inbox__in=visible_inboxes(request.member))
    return get_object_or_404(visible.select_related("inbox", "contact", "assignee__user"), pk=conversation_id)


@require_POST
@member_required
@vary_on_headers("HX-Request")
def reply(request: MemberRequest, subdomain: str, conversation_id: int) -> HttpResponse:
    conversation = _conversation(request, conversation_id)
    body = request.POST.get("body", "")
    try:
        message = replies.send_reply(conversation, body=body, by=request.member)
    except ValidationError as exc:
        if request.htmx:
            # The composer comes back with the draft and the reason, in place of the one sent.
            errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
            context = replies.composer_context(conversation, request.member)
            context.update(
                conversation=conversation,
                reply_body=body,
                reply_body_errors=errors.pop("body", []),
                reply_errors=[error for field_errors in errors.values() for error in field_errors],
            )
            return render(request, "inboxes/partials/composer.html", context)
        messages.error(request, " ".join(exc.messages))
        return redirect("inboxes:thread", subdomain, conversation.pk)
    thread_url = reverse("inboxes:thread", args=(subdomain, conversation.pk))
    if request.htmx:
        return HttpResponseClientRedirect(f"{thread_url}#message-{message.pk}")
    messages.success(request, f"Your reply to {conversation.contact.email} is on its way.")
    return redirect(f"{thread_url}#message-{message.pk}")


@require_POST
@member_required
@vary_on_headers("HX-Request")
def retry_reply(
    request: MemberRequest, subdomain: str, conversation_id: int, message_id: int
) -> HttpResponse:
    conversation = _conversation(request, conversation_id)
    outgoing = conversation.messages.filter(account=request.account, direction=Message.Direction.OUTGOING)
    message = get_object_or_404(outgoing, pk=message_id)
    message.conversation = conversation
    notice = ""
    try:
        if not replies.retry_reply(message, by=request.member):
            notice = "This reply is no longer marked failed; nothing to retry."
    except ValidationError as exc:
        notice = " ".join(exc.messages)
    if request.htmx:
        message.refresh_from_db()
        can_act = can_act_in_inbox(request.member, conversation.inbox)
        context = {"message": message, "can_act": can_act, "delivery_notice": notice}
        return render(request, "inboxes/partials/delivery_state.html", context)
    if notice:
        messages.error(request, notice)
    return redirect(f"{reverse('inboxes:thread', args=(subdomain, conversation.pk))}#message-{message.pk}")
