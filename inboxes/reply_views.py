"""The composer's endpoints: send a reply with its files, retry one that failed, add an internal note
(H3, H4, B6, B7, C1, F2)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from inboxes import mail_display, notes, presence, presence_views, replies
from inboxes.models import Conversation, Message
from inboxes.permissions import visible_inboxes
from inboxes.thread_context import thread_controls
from inboxhub.tenancy import MemberRequest, member_required


def _conversation(request: MemberRequest, conversation_id: int) -> Conversation:
    # Conversations of inboxes the member cannot see answer 404, as a missing one (B6, A2).
    visible = request.account.conversations.filter(inbox__in=visible_inboxes(request.member))
    return get_object_or_404(visible.select_related("inbox", "contact", "assignee__user"), pk=conversation_id)


def _appended(request: MemberRequest, conversation: Conversation, message: Message) -> dict:
    """What an htmx answer adds to the thread: the new message as the thread shows it, the activity."""
    message = (
        conversation.messages.filter(account=request.account)
        .select_related("claimed_member__user")
        .prefetch_related("attachments")
        .get(pk=message.pk)
    )
    mail_display.prepare([message])
    return {"conversation": conversation, "message": message} | thread_controls(request.member, conversation)


@require_POST
@member_required
@vary_on_headers("HX-Request")
def reply(request: MemberRequest, subdomain: str, conversation_id: int) -> HttpResponse:
    conversation = _conversation(request, conversation_id)
    body = request.POST.get("body", "")
    files = request.FILES.getlist("attachments")
    seen_reply, confirmed_reply = presence_views.posted_reply_ids(request)
    try:
        message = replies.send_reply(
            conversation,
            body=body,
            attachments=files,
            seen_reply=seen_reply,
            confirmed_reply=confirmed_reply,
            by=request.member,
        )
    except presence.ReplyCrossed as crossed:  # issue 17: someone else replied since the agent started
        return presence_views.crossed_answer(request, conversation, crossed, body=body)
    except presence.ReplyAlreadySent as already:  # the same form posted twice: sent once
        return presence_views.already_sent_answer(request, conversation, already)
    except ValidationError as exc:
        if request.htmx:
            # The composer comes back with the draft and the reason, in place of the one sent.
            errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
            context = replies.composer_context(conversation, request.member)
            if seen_reply is not None:  # the draft is still the one started then (issue 17)
                context["composer"]["seen_reply"] = seen_reply
            context.update(
                conversation=conversation,
                reply_body=body,
                reply_body_errors=errors.pop("body", []),
                reply_attachment_errors=errors.pop("attachments", []),
                reply_errors=[error for field_errors in errors.values() for error in field_errors],
            )
            return render(request, "inboxes/partials/composer.html", context)
        messages.error(request, " ".join(exc.messages))
        return redirect("inboxes:thread", subdomain, conversation.pk)
    thread_url = reverse("inboxes:thread", args=(subdomain, conversation.pk))
    if request.htmx:
        # A fresh composer, and the reply and the activity in place: no reload loses the page's state.
        context = replies.composer_context(conversation, request.member)
        context |= _appended(request, conversation, message)
        return render(request, "inboxes/partials/reply_sent.html", context)
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
        context = {"message": message, "delivery_notice": notice}
        context |= thread_controls(request.member, conversation, activity=False)
        return render(request, "inboxes/partials/delivery_state.html", context)
    if notice:
        messages.error(request, notice)
    return redirect(f"{reverse('inboxes:thread', args=(subdomain, conversation.pk))}#message-{message.pk}")


@require_POST
@member_required
@vary_on_headers("HX-Request")
def note(request: MemberRequest, subdomain: str, conversation_id: int) -> HttpResponse:
    conversation = _conversation(request, conversation_id)
    body = request.POST.get("body", "")
    thread_url = reverse("inboxes:thread", args=(subdomain, conversation.pk))
    try:
        note = notes.add_note(conversation, body=body, by=request.member)
    except ValidationError as exc:
        if request.htmx:
            context = {"conversation": conversation, "note_body": body, "note_errors": exc.messages}
            return render(request, "inboxes/partials/note_form.html", context)
        messages.error(request, " ".join(exc.messages))
        return redirect(f"{thread_url}#note-composer")
    if request.htmx:
        # A fresh form in place of the one posted, and the note added at the end of the thread.
        return render(request, "inboxes/partials/note_added.html", _appended(request, conversation, note))
    messages.success(request, "Your note is saved. Only your team sees it.")
    return redirect(f"{thread_url}#message-{note.pk}")
