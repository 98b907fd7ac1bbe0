"""The agent inbox: conversation list, thread, mail HTML, attachments, contacts, failed messages."""

from urllib.parse import quote

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_scopes import scope

from channels_conn.spool import retry_inbound
from inboxes import inline_images, live, mail_display, selectors
from inboxes.contact_forms import ContactOwnerForm
from inboxes.contact_page import contact_page
from inboxes.contact_panel import contact_panel
from inboxes.models import Attachment, Contact, Inbox
from inboxes.permissions import can_act_in_inbox, visible_inboxes
from inboxes.read_state import mark_read
from inboxes.replies import composer_context
from inboxes.selectors import Counts
from inboxes.services import set_contact_owner
from inboxes.thread_context import thread_controls
from inboxhub.models import Membership
from inboxhub.permissions import can, require
from inboxhub.tenancy import MemberRequest, member_required

# The policy of a message's own HTML document: inert even when opened directly (H2, DESIGN "HTML").
# No `allow-scripts`, ever; `allow-same-origin` only so the thread page's script can read the
# document's height (static/js/thread.js); with no script in it, the document can do nothing with
# its origin, and `default-src 'none'` forbids scripts even to a browser without sandboxing.
# `{img_src}`: this app's inline-image URLs and data:, and remote images when the agent allows them.
MAIL_HTML_CSP = (
    "sandbox allow-same-origin allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
    "img-src {img_src}; style-src 'unsafe-inline'; font-src data:; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'self'"
)
# Types a browser renders harmlessly; everything else is sent as opaque bytes.
PLAIN_DOWNLOAD_TYPES = frozenset(["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"])


def _sidebar(member: Membership) -> tuple[list[Inbox], list[tuple[Inbox, int]], Counts]:
    """The inboxes the member sees, each with its open count, and every count of the views (H1)."""
    # One query for the sidebar and the current inbox: an account has a handful of inboxes.
    inboxes = list(visible_inboxes(member))
    counts = selectors.conversation_counts(member, [inbox.pk for inbox in inboxes])
    return inboxes, [(inbox, counts.of(inbox.pk)["open"]) for inbox in inboxes], counts


def _thread_base(subdomain: str) -> str:
    """`/a/<subdomain>/inbox/c/`: the list appends each id, one reverse() for its fifty links."""
    return reverse("inboxes:thread", args=[subdomain, 0]).removesuffix("0/")


@require_GET
@member_required
@live.follow  # the page's change counter, read before its queries (H5)
@vary_on_headers("HX-Request", "HX-Target")
def inbox_index(request: MemberRequest, subdomain: str, inbox_id: int | None = None) -> HttpResponse:
    inboxes, nav, counts = _sidebar(request.member)
    inbox = next((i for i in inboxes if i.pk == inbox_id), None) if inbox_id else next(iter(inboxes), None)
    if inbox_id and inbox is None:
        raise Http404("No such inbox")
    view = request.GET.get("view", selectors.DEFAULT_VIEW)
    if view not in selectors.VIEWS:
        view = selectors.DEFAULT_VIEW
    context = {"nav": nav, "counts": counts, "inbox": inbox, "view": view, "current": inbox and inbox.pk}
    context["thread_base"] = _thread_base(subdomain)
    if inbox is not None:
        context["page"] = selectors.conversation_page(
            inbox,
            view=view,
            member=request.member,
            cursor=request.GET.get("before"),
            only=live.list_changes(request),  # H5: an open list asks for its changed rows alone
        )
        inbox_counts = counts.of(inbox.pk)
        context["views"] = [(key, label, inbox_counts.get(key)) for key, label in selectors.VIEWS.items()]
        context["inbox_counts"] = inbox_counts
    return render(request, live.list_template(request, "inboxes/index.html"), context)  # H5


@require_GET
@member_required
@live.follow
@vary_on_headers("HX-Request", "HX-Target")
def assigned_to_me(request: MemberRequest, subdomain: str) -> HttpResponse:
    """The member's open conversations in every inbox they see, newest first (H1)."""
    inboxes, nav, counts = _sidebar(request.member)
    page = selectors.assigned_page(
        request.member,
        inbox_ids=[inbox.pk for inbox in inboxes],
        cursor=request.GET.get("before"),
        only=live.list_changes(request),  # H5: an open list asks for its changed rows alone
    )
    context = {"nav": nav, "counts": counts, "page": page, "current": "mine"}
    context["thread_base"] = _thread_base(subdomain)
    return render(request, live.list_template(request, "inboxes/index.html"), context)  # H5


@require_GET
@member_required
def inbox_counts(request: MemberRequest, subdomain: str) -> HttpResponse:
    """The sidebar with its counts, alone: the inbox page refreshes it in place (H1)."""
    _, nav, counts = _sidebar(request.member)
    current = request.GET.get("current", "")
    current = int(current) if current.isdigit() else "mine" if current == "mine" else None
    context = {"nav": nav, "counts": counts, "current": current}
    return render(request, "inboxes/index.html#inbox-nav", context)


@require_GET
@member_required
def account_home(request: MemberRequest, subdomain: str) -> HttpResponse:
    """`/a/<subdomain>/`: where a member starts, their inbox (H1)."""
    return redirect("inboxes:index", subdomain)


@require_GET
@member_required
@live.follow
@vary_on_headers("HX-Request")
def thread(request: MemberRequest, subdomain: str, conversation_id: int) -> HttpResponse:
    """A conversation, its newest messages first shown; older ones a page at a time (H2)."""
    conversation = get_object_or_404(
        # The ticket by its relation's name (C11): this app sits below tickets and never imports it.
        request.account.conversations.filter(inbox__in=visible_inboxes(request.member)).select_related(
            "contact", "inbox", "assignee__user", "ticket__stage", "ticket__pipeline", "ticket__owner__user"
        ),
        pk=conversation_id,
    )
    mark_read(conversation, by=request.member)  # H1: the list shows it read for this member from now on
    page = selectors.thread_messages(conversation, before=request.GET.get("before"))
    mail_display.prepare(page.messages)
    context = {"conversation": conversation, "page": page}
    if request.htmx and request.GET.get("before"):
        context["can_act"] = can_act_in_inbox(request.member, conversation.inbox)
        return render(request, "inboxes/thread.html#older-messages", context)
    context |= thread_controls(request.member, conversation)
    context["assignable"] = selectors.assignable_members(conversation.inbox) if context["can_act"] else []
    context.update(composer_context(conversation, request.member))
    context["contact_panel"] = contact_panel(request.member, conversation)  # H6
    return render(request, "inboxes/thread.html", context)


@require_GET
@member_required
@xframe_options_sameorigin  # shown in the thread's iframe; every other page answers DENY
def message_html(request: MemberRequest, subdomain: str, message_id: int) -> HttpResponse:
    """A message's HTML as its own inert document; remote images only with `?images=show` (H2)."""
    visible = request.account.messages.filter(inbox__in=visible_inboxes(request.member))
    message = get_object_or_404(visible.exclude(html=""), pk=message_id)
    show_images = request.GET.get("images") == "show"
    html = inline_images.with_inline_images(message)
    if not show_images:
        html = mail_display.without_remote_images(html)
    html = mail_display.folded_html(html, forward=bool(message.forwarded_original))
    response = HttpResponse(render_to_string("inboxes/message_html.html", {"message": message, "html": html}))
    inline = request.build_absolute_uri(inline_images.url_prefix())
    remote = "https: " if show_images else ""
    response["Content-Security-Policy"] = MAIL_HTML_CSP.format(img_src=f"{remote}data: {inline}")
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
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
    context = {"contact": contact, "owner_form": owner_form}
    context |= contact_page(request.member, contact, before=request.GET.get("before"))  # H6
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
