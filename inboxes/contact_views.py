"""Merging two contacts of one person on the contact page (H6): pick the other one, confirm, merge.

Admins only (`manage_inboxes`): they see every inbox (B6), so every conversation
that moves. Another account's contact answers 404 (A2); a merge submitted twice
says it is done the second time.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from inboxes import selectors
from inboxes.contact_forms import ContactMergeForm, ContactOwnerForm
from inboxes.contact_merge import merge_contacts
from inboxes.contact_page import contact_page
from inboxes.models import Contact, ContactMerge, Conversation
from inboxes.permissions import NOT_ON_ACCESS_LIST, can_act_in_inbox
from inboxhub.permissions import require
from inboxhub.tenancy import MemberRequest, member_required

MERGE_PARTIAL = "inboxes/contact.html#contact-merge"


def _page(request: MemberRequest, contact: Contact, merge_context: dict, status: int = 200) -> HttpResponse:
    """The merge block alone for htmx, else the whole contact page around it."""
    context = {"contact": contact, **merge_context}
    if request.htmx:
        return render(request, MERGE_PARTIAL, context)
    owner_form = ContactOwnerForm(initial={"owner": contact.owner_id}, account=request.account)
    context = {"owner_form": owner_form} | contact_page(request.member, contact) | context
    return render(request, "inboxes/contact.html", context, status=status)


def _merges(request: MemberRequest, contact: Contact):
    return ContactMerge.objects.filter(account=request.account, contact=contact)


def _done(request: MemberRequest, contact: Contact) -> HttpResponse:
    url = reverse("contacts:detail", args=[request.account.subdomain, contact.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_POST
@member_required
@vary_on_headers("HX-Request")
def contact_merge(request: MemberRequest, subdomain: str, contact_id: int) -> HttpResponse:
    """First the address of the other contact, answered with what the merge will do; then `other`."""
    contact = get_object_or_404(
        selectors.visible_contacts(request.member).select_related("owner__user"), pk=contact_id
    )
    require(request.member, "manage_inboxes")
    _require_acting_on_all(request, contact)
    if "other" in request.POST:
        return _merge(request, contact, request.POST["other"])
    form = ContactMergeForm(request.POST, contact=contact)
    if not form.is_valid():
        # htmx swaps only 2xx answers: the block comes back with the form's error.
        return _page(request, contact, {"merge_form": form}, status=200 if request.htmx else 400)
    other = form.other
    moving = Conversation.objects.filter(account=request.account, contact=other).count()
    return _page(request, contact, {"merge_form": form, "merge_other": other, "merge_moving": moving})


def _require_acting_on_all(request: MemberRequest, contact: Contact) -> None:
    """A merge moves the contact's conversations: the admin must act in each of their inboxes (B6)."""
    inbox_ids = Conversation.objects.filter(account=request.account, contact=contact).values("inbox_id")
    for inbox in request.account.inboxes.filter(pk__in=inbox_ids):
        if not can_act_in_inbox(request.member, inbox):
            raise PermissionDenied(NOT_ON_ACCESS_LIST.format(inbox=inbox.name))


def _merge(request: MemberRequest, contact: Contact, other_id: str) -> HttpResponse:
    if not other_id.isdigit():
        return HttpResponseBadRequest("Choose the contact to merge.")
    other = request.account.contacts.filter(pk=int(other_id)).first()
    if other is None:
        # Submitted twice: the first merge took it. Anyone else's id, or a made-up one: 404 (A2).
        get_object_or_404(_merges(request, contact), merged_contact_id=int(other_id))
        messages.info(request, "These contacts are already merged.")
        return _done(request, contact)
    _require_acting_on_all(request, other)
    try:
        merge = merge_contacts(contact, other, by=request.member)
    except ValidationError as refused:
        if _merges(request, contact).filter(merged_contact_id=other.pk).exists():
            messages.info(request, "These contacts are already merged.")
            return _done(request, contact)
        context = {"merge_form": ContactMergeForm(contact=contact), "merge_error": refused.messages[0]}
        return _page(request, contact, context, status=200 if request.htmx else 409)
    moved = f"{merge.conversations} conversation{'s' if merge.conversations != 1 else ''}"
    messages.success(
        request,
        f"{merge.merged_name or merge.merged_email} was merged into {contact}: {moved} moved here, and mail "
        f"from {merge.merged_email} now lands on this contact.",
    )
    return _done(request, contact)
