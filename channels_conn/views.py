"""The fallback address editor, Configuration tab (C1–C8, C12), and the page of the verification link (C4)."""

import copy
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from channels_conn.forms import SIGNATURE_MAX_LENGTH, FallbackAddressForm
from channels_conn.models import FallbackAddress
from channels_conn.selectors import (
    SIGNATURE_TOKENS,
    default_from_address,
    effective_from,
    render_signature,
    styles_as_data,
)
from channels_conn.services import update_fallback_address, validate_custom_from_address
from channels_conn.settings_tabs import Tab, open_tab
from channels_conn.verification import LinkState, check_link, confirm_link, send_verification
from inboxhub.lib.html import sanitize_html
from inboxhub.outbound import latest_verification_email
from inboxhub.tenancy import MemberRequest, member_required

PAGE = "channels_conn/configuration.html"
TAB = "configuration"


@require_http_methods(["GET", "POST"])
@member_required
def configuration(request: MemberRequest, subdomain: str, inbox_id: int) -> HttpResponse:
    tab = open_tab(request, inbox_id, TAB)
    if request.method == "GET":
        form = FallbackAddressForm(initial=FallbackAddressForm.initial_from(tab.fallback_address))
        return _render_page(request, tab, form)
    form = FallbackAddressForm(request.POST)
    if form.is_valid() and _save(request, tab.fallback_address, form):
        return redirect("fallback:configuration", subdomain, tab.inbox.pk)
    tab.fallback_address.refresh_from_db()
    return _render_page(request, tab, form, status=400)


def _save(request: MemberRequest, fallback_address: FallbackAddress, form: FallbackAddressForm) -> bool:
    try:
        removed = update_fallback_address(fallback_address, **form.cleaned_data, by=request.member)
    except ValidationError as exc:
        form.add_error(None, exc)
        return False
    messages.success(
        request, "Fallback address settings saved. Replies sent from this inbox from now on use them."
    )
    if removed:
        messages.warning(
            request, "Removed from the signature because it is not safe in email: " + "; ".join(removed)
        )
    if request.POST.get("action") == "verify":
        _send_verification(request, fallback_address)
    return True


def _send_verification(request: MemberRequest, fallback_address: FallbackAddress) -> None:
    def link_for(token: str) -> str:
        path = reverse("verify_from_address")
        return request.build_absolute_uri(f"{path}?{urlencode({'token': token})}")

    try:
        send_verification(fallback_address, link_for=link_for, by=request.member)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.info(
            request,
            f"A verification link is on its way to {fallback_address.custom_from_address}. "
            "It works once, for 24 hours; whoever reads that mailbox confirms it, no InboxHub login needed.",
        )


def _render_page(
    request: MemberRequest, tab: Tab, form: FallbackAddressForm, *, status: int = 200
) -> HttpResponse:
    fallback_address = tab.fallback_address
    # How the newest link's mail fared, while there is still something to verify.
    verification_email = (
        latest_verification_email(request.account, fallback_address.custom_from_address)
        if fallback_address.custom_from_pending
        else None
    )
    context = tab.context(
        form=form,
        default_address=default_from_address(request.member),
        tokens=SIGNATURE_TOKENS,
        signature_for_editor=styles_as_data(sanitize_html(form["signature_html"].value() or "").html),
        **_preview(request, fallback_address, form),
        **_deliverability(fallback_address.custom_from_address),
        verification_email=verification_email,
    )
    return render(request, PAGE, context, status=status)


def _preview(request: MemberRequest, fallback_address: FallbackAddress, form: FallbackAddressForm) -> dict:
    """C7: from name, from address and signature as a contact would see them, from the form's values."""
    draft = copy.copy(fallback_address)
    if form.is_bound:
        form.is_valid()
        for name in FallbackAddressForm.FIELDS:
            if name in getattr(form, "cleaned_data", {}):
                setattr(draft, name, form.cleaned_data[name])
        if draft.custom_from_address.lower() != fallback_address.custom_from_address.lower():
            draft.custom_from_verified_at = None
    signature = sanitize_html(draft.signature_html)
    name, address = effective_from(draft, request.member)
    return {
        "preview": {
            "name": name,
            "address": address,
            "signature": styles_as_data(render_signature(signature.html, request.member)),
            "removed": signature.removed,
            "pending": draft.custom_from_pending and bool(draft.custom_from_address),
            "custom_address": draft.custom_from_address,
            "send_from": draft.send_from,
        }
    }


def _deliverability(address: str) -> dict:
    if not address:
        return {"domain_check": None}
    try:
        report = validate_custom_from_address(address)
    except ValidationError as exc:
        return {"domain_check": {"problem": " ".join(exc.messages), "report": None}}
    return {"domain_check": {"problem": "", "report": report}}


@require_POST
@member_required
def preview(request: MemberRequest, subdomain: str, inbox_id: int) -> HttpResponse:
    """Render the preview from the posted form; nothing is saved (C7)."""
    fallback_address = open_tab(request, inbox_id, TAB).fallback_address
    form = FallbackAddressForm(request.POST)
    return render(request, f"{PAGE}#preview", _preview(request, fallback_address, form))


@require_POST
@member_required
def editor_html(request: MemberRequest, subdomain: str, inbox_id: int) -> HttpResponse:
    """The signature typed in HTML mode, sanitized, for the rich-text mode to show (C6); nothing is saved."""
    open_tab(request, inbox_id, TAB)
    signature = sanitize_html(request.POST.get("signature_html", "")[:SIGNATURE_MAX_LENGTH])
    return HttpResponse(styles_as_data(signature.html), content_type="text/html; charset=utf-8")


@require_GET
@member_required
def check_domain(request: MemberRequest, subdomain: str, inbox_id: int) -> HttpResponse:
    """The DNS check of a custom from address as it is typed (C4)."""
    open_tab(request, inbox_id, TAB)
    field = FallbackAddressForm.base_fields["custom_from_address"]
    try:
        address = field.clean(request.GET.get("custom_from_address", ""))
    except ValidationError as exc:
        return render(request, f"{PAGE}#deliverability", {"domain_check": {"problem": exc.messages[0]}})
    return render(request, f"{PAGE}#deliverability", _deliverability(address))


@never_cache
@require_http_methods(["GET", "POST"])
def verify_from_address(request: HttpRequest) -> HttpResponse:
    """The link of the verification mail; anyone holding it may confirm, signed in or not (C4).

    It proves only control of the mailbox, so it needs no login and grants nothing else.
    GET shows which account, inbox and address it is for and a *Verify* button; only the
    POST verifies, so a mail scanner that fetches the link verifies nothing.
    """
    if request.method == "POST":
        token = request.POST.get("token", "")
        link = confirm_link(token)
    else:
        token = request.GET.get("token", "")
        link = check_link(token)
    status = 400 if link.state == LinkState.REFUSED else 200
    context = {"link": link, "token": token, "states": LinkState}
    return render(request, "channels_conn/verify.html", context, status=status)
