"""The agent inbox: conversation list, thread, mail HTML, attachments, contacts, failed messages."""

from urllib.parse import quote

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_scopes import scope

from channels_conn.spool import retry_inbound
from inboxes import inline_images, selectors
from inboxes.contact_forms import ContactOwnerForm
from inboxes.models import Attachment, Contact
from inboxes.permissions import can_act_in_inbox, visible_inboxes
from inboxes.replies import composer_context
from inboxes.services import set_contact_owner
from inboxhub.permissions import can, require
from inboxhub.tenancy import MemberRequest, member_required

# The policy of a message's own HTML document: inert even when opened directly (H2, DESIGN "HTML").
# `{origin}` is this app's, for the message's inline images (inboxes/inline_images.py).
MAIL_HTML_CSP = (
    "sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
    "img-src https: data: {origin}; style-src 'unsafe-inline'; font-src https: data:; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'self'"
)
# Types a browser renders harmlessly; everything else is sent as opaque bytes.
PLAIN_DOWNLOAD_TYPES = frozenset(["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"])


@require_GET
@member_required
def inbox_index(request: MemberRequest, subdomain: str, inbox_id: int | None = None) -> HttpResponse:
    # One query for the sidebar and the current inbox: an account has a handful of inboxes.
    inboxes = list(visible_inboxes(request.member).prefetch_related("channels__fallback_address"))
    inbox = next((i for i in inboxes if i.pk == inbox_id), None) if inbox_id else next(iter(inboxes), None)
    if inbox_id and inbox is None:
        raise Http404("No such inbox")
    view = request.GET.get("view", selectors.DEFAULT_VIEW)
    if view not in selectors.VIEWS:
        view = selectors.DEFAULT_VIEW
    context = {"inboxes": inboxes, "inbox": inbox, "view": view}
    if inbox is not None:
        context["page"] = selectors.conversation_page(
            inbox, view=view, member=request.member, cursor=request.GET.get("before")
        )
        counts = selectors.view_counts(inbox, request.member)
        context["views"] = [(key, label, counts.get(key)) for key, label in selectors.VIEWS.items()]
        context["counts"] = counts
    return render(request, "inboxes/index.html", context)


@require_GET
@member_required
def account_home(request: MemberRequest, subdomain: str) -> HttpResponse:
    """`/a/<subdomain>/`: where a member starts, their inbox (H1)."""
    return redirect("inboxes:index", subdomain)


@require_GET
@member_required
def thread(request: MemberRequest, subdomain: str, conversation_id: int) -> HttpResponse:
    conversation = get_object_or_404(
        # The ticket by its relation's name (C11): this app sits below tickets and never imports it.
        request.account.conversations.filter(inbox__in=visible_inboxes(request.member)).select_related(
            "contact", "inbox", "assignee__user", "ticket__stage", "ticket__pipeline", "ticket__owner__user"
        ),
        pk=conversation_id,
    )
    # The member an unverified sender claims to be is named on the message (G8), in the same query.
    messages_list = selectors.thread_messages(conversation).select_related("claimed_member__user")
    can_act = can_act_in_inbox(request.member, conversation.inbox)
    context = {
        "conversation": conversation,
        "messages_list": messages_list,
        "can_act": can_act,
        "assignable": selectors.assignable_members(conversation.inbox) if can_act else [],
        # B7: a free seat may assign a conversation only while nobody (or they themselves) has it.
        "may_reassign": request.member.has_paid_seat or conversation.assignee_id in (None, request.member.pk),
    }
    context.update(composer_context(conversation, request.member))
    return render(request, "inboxes/thread.html", context)


@require_GET
@member_required
def message_html(request: MemberRequest, subdomain: str, message_id: int) -> HttpResponse:
    visible = request.account.messages.filter(inbox__in=visible_inboxes(request.member))
    message = get_object_or_404(visible.exclude(html=""), pk=message_id)
    html = inline_images.with_inline_images(message)
    response = HttpResponse(render_to_string("inboxes/message_html.html", {"message": message, "html": html}))
    response["Content-Security-Policy"] = MAIL_HTML_CSP.format(
        origin=f"{request.scheme}://{request.get_host()}"
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


def _content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII fallback and the exact name as `filename*`."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in filename)
    return f"attachment; filename=\"{fallback or 'attachment'}\"; filename*=UTF-8''{quote(filename, safe='')}"


@require_GET
@member_required
def attachment_download(request: MemberRequest, subdomain: str, attachment_id) -> FileResponse:
    visible = request.account.attachments.filter(message__inbox__in=visible_inboxes(request.member))
    attachment = get_object_or_404(visible, pk=attachment_id)
    content_type = attachment.content_type if attachment.content_type in PLAIN_DOWNLOAD_TYPES else None
    response = FileResponse(_open_file(attachment), content_type=content_type or "application/octet-stream")
    response["Content-Disposition"] = _content_disposition(attachment.filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Cache-Control"] = "private, no-store"
    return response


def _open_file(attachment: Attachment):
    try:
        return attachment.file.open("rb")
    except FileNotFoundError:
        raise Http404("No such attachment") from None


@require_GET
def inline_image(request: HttpRequest, token: str) -> FileResponse:
    """An image of a mail for its sandboxed HTML document, which has no session: the URL is signed."""
    signed = inline_images.attachment_for(token)
    if signed is None:
        raise Http404("No such image")
    account_id, attachment_id = signed
    with scope(account=account_id):
        images = Attachment.objects.filter(
            account_id=account_id, content_type__in=inline_images.INLINE_IMAGE_TYPES
        )
        attachment = get_object_or_404(images, pk=attachment_id)
    response = FileResponse(_open_file(attachment), content_type=attachment.content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Cache-Control"] = f"private, max-age={inline_images.SIGNED_URL_SECONDS}"
    return response


@require_GET
@member_required
def failed_messages(request: MemberRequest, subdomain: str) -> HttpResponse:
    require(request.member, "manage_inboxes")
    failed = selectors.failed_inbound_for(request.account)
    return render(request, "inboxes/failed.html", {"failed": failed})


@require_POST
@member_required
def retry_failed_message(request: MemberRequest, subdomain: str, inbound_id: int) -> HttpResponse:
    require(request.member, "manage_inboxes")
    inbound = selectors.inbound_for(request.account, inbound_id)
    if inbound is None:
        raise Http404("No such message")
    if retry_inbound(inbound):
        messages.success(request, f"Message #{inbound.pk} is queued for another try.")
    else:
        messages.info(request, f"Message #{inbound.pk} is no longer marked failed; nothing to retry.")
    return redirect("inboxes:failed", subdomain)


@require_GET
@member_required
def contact_list(request: MemberRequest, subdomain: str) -> HttpResponse:
    page = selectors.contact_page(request.member, cursor=request.GET.get("before"))
    return render(request, "inboxes/contacts.html", {"page": page})


def _contact(request: MemberRequest, contact_id: int) -> Contact:
    # A contact of only hidden inboxes answers as a missing one (B6, A2).
    return get_object_or_404(
        selectors.visible_contacts(request.member).select_related("owner__user"), pk=contact_id
    )


def _owner_form(request: MemberRequest, contact: Contact, data=None) -> ContactOwnerForm | None:
    """The owner picker, for admins only: agents see the owner but cannot change it (D6)."""
    if not can(request.member, "manage_inboxes"):
        return None
    return ContactOwnerForm(data, initial={"owner": contact.owner_id}, account=request.account)


@require_GET
@member_required
def contact_detail(request: MemberRequest, subdomain: str, contact_id: int) -> HttpResponse:
    contact = _contact(request, contact_id)
    return _render_contact(request, contact, _owner_form(request, contact))


def _render_contact(request: MemberRequest, contact: Contact, owner_form, status: int = 200) -> HttpResponse:
    timeline = selectors.contact_timeline(contact, inboxes=visible_inboxes(request.member))
    context = {"contact": contact, "timeline": timeline, "owner_form": owner_form}
    return render(request, "inboxes/contact.html", context, status=status)


@require_POST
@member_required
@vary_on_headers("HX-Request")
def contact_owner(request: MemberRequest, subdomain: str, contact_id: int) -> HttpResponse:
    contact = _contact(request, contact_id)
    require(request.member, "manage_inboxes")
    form = _owner_form(request, contact, request.POST)
    if not form.is_valid():
        if request.htmx:
            # htmx swaps only 2xx answers: the owner block comes back with the form's error.
            return render(
                request, "inboxes/contact.html#contact-owner", {"contact": contact, "owner_form": form}
            )
        return _render_contact(request, contact, form, status=400)
    owner = form.cleaned_data["owner"]
    set_contact_owner(contact, owner, by=request.member)
    saved = f"{contact} is now owned by {owner.user}." if owner else f"{contact} has no owner now."
    if request.htmx:
        context = {"contact": contact, "owner_form": _owner_form(request, contact), "owner_saved": saved}
        return render(request, "inboxes/contact.html#contact-owner", context)
    messages.success(request, saved)
    return redirect("contacts:detail", subdomain, contact.pk)
