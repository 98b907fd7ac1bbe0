"""Settings › Inbox › Inboxes: channels, access list, renaming, new inboxes (B1–B6, E1–E2, F2)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from channels_conn.services import set_channel_enabled
from inboxes.models import Inbox
from inboxes.permissions import create_inbox_refusal, is_on_access_list
from inboxes.services import add_inbox, clean_inbox_name, rename_inbox, set_inbox_access
from inboxes.settings_forms import ChannelSwitchForm, InboxAccessForm, InboxNameForm, NewInboxChannelForm
from inboxhub.permissions import require
from inboxhub.tenancy import MemberRequest, member_required


def _inbox(request: MemberRequest, inbox_id: int) -> Inbox:
    require(request.member, "manage_inboxes")
    return get_object_or_404(request.account.inboxes, pk=inbox_id)


def fallback_editor_url(subdomain: str, inbox_id: int) -> str:
    """The fallback address editor (channels_conn); its path is fixed by the project's URL frame."""
    try:
        return reverse("fallback:configuration", args=[subdomain, inbox_id])
    except NoReverseMatch:
        return f"{reverse('inbox_settings:detail', args=[subdomain, inbox_id])}fallback/"


def _rename_form(data=None, *, inbox: Inbox) -> InboxNameForm:
    return InboxNameForm(data, initial={"name": inbox.name}, auto_id="rename_%s")


def _header(request: MemberRequest, inbox: Inbox, tab: str, rename_form=None) -> dict:
    """What the shared head of the Inboxes and Access tabs shows: selector, Actions menu, tabs."""
    return {
        "inbox": inbox,
        "inboxes": list(request.account.inboxes.all()),
        "tab": tab,
        "rename_form": rename_form or _rename_form(inbox=inbox),
        "create_refusal": create_inbox_refusal(request.account),
    }


@require_GET
@member_required
def inbox_settings_index(request: MemberRequest, subdomain: str) -> HttpResponse:
    require(request.member, "manage_inboxes")
    inbox = request.account.inboxes.first()  # the default inbox comes first
    return redirect("inbox_settings:detail", subdomain, inbox.pk)


@require_GET
@member_required
def switch_inbox(request: MemberRequest, subdomain: str) -> HttpResponse:
    """The current-inbox selector's target: works as a plain GET form without JavaScript (B1)."""
    require(request.member, "manage_inboxes")
    inbox_id = request.GET.get("inbox", "")
    wellformed = inbox_id.isascii() and inbox_id.isdigit() and len(inbox_id) <= 9
    inbox = request.account.inboxes.filter(pk=int(inbox_id)).first() if wellformed else None
    if inbox is None:
        return redirect("inbox_settings:index", subdomain)
    view = "inbox_settings:access" if request.GET.get("tab") == "access" else "inbox_settings:detail"
    return redirect(view, subdomain, inbox.pk)


def _render_detail(request: MemberRequest, inbox: Inbox, rename_form=None, status=200) -> HttpResponse:
    context = _header(request, inbox, "inboxes", rename_form) | {
        "channels": inbox.channels.select_related("fallback_address"),
        "fallback_url": fallback_editor_url(request.account.subdomain, inbox.pk),
    }
    return render(request, "inboxes/settings/inbox.html", context, status=status)


@require_GET
@member_required
def inbox_detail(request: MemberRequest, subdomain: str, inbox_id: int) -> HttpResponse:
    return _render_detail(request, _inbox(request, inbox_id))


@require_POST
@member_required
@vary_on_headers("HX-Request")
def rename(request: MemberRequest, subdomain: str, inbox_id: int) -> HttpResponse:
    inbox = _inbox(request, inbox_id)
    tab = "access" if request.POST.get("tab") == "access" else "inboxes"
    form = _rename_form(request.POST, inbox=inbox)
    if form.is_valid():
        try:
            rename_inbox(inbox, name=form.cleaned_data["name"], by=request.member)
        except ValidationError as exc:
            form.add_error("name", exc.message_dict.get("name", exc.messages))
        else:
            messages.success(request, f"The inbox is now called “{inbox.name}”.")
            view = "inbox_settings:access" if tab == "access" else "inbox_settings:detail"
            url = reverse(view, args=[subdomain, inbox.pk])
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    inbox.refresh_from_db(fields=["name"])
    if request.htmx:
        # htmx swaps only 2xx answers: the form with its errors replaces itself inside the dialog.
        context = {"inbox": inbox, "rename_form": form, "tab": tab}
        return render(request, "inboxes/settings/partials/inbox_header.html#rename-form", context)
    if tab == "access":
        return _render_access(request, inbox, _access_form(request, inbox, None), form, status=400)
    return _render_detail(request, inbox, form, status=400)


@require_POST
@member_required
@vary_on_headers("HX-Request")
def switch_channel(request: MemberRequest, subdomain: str, inbox_id: int, channel_id: int) -> HttpResponse:
    inbox = _inbox(request, inbox_id)
    channel = get_object_or_404(inbox.channels.select_related("fallback_address"), pk=channel_id)
    form = ChannelSwitchForm(request.POST)
    if not form.is_valid():
        return HttpResponse("Say whether the channel should be on or off.", status=400)
    set_channel_enabled(channel, form.cleaned_data["enabled"], by=request.member)
    if request.htmx:
        context = {
            "inbox": inbox,
            "channel": channel,
            "fallback_url": fallback_editor_url(subdomain, inbox_id),
        }
        return render(request, "inboxes/settings/inbox.html#channel-row", context)
    state = "on" if channel.enabled else "off: mail sent to it is refused"
    messages.success(request, f"{channel.get_kind_display()} is {state}.")
    return redirect("inbox_settings:detail", subdomain, inbox.pk)


def _access_form(request: MemberRequest, inbox: Inbox, data) -> InboxAccessForm:
    grants = list(inbox.access_grants.all())
    initial = {
        "access": inbox.access,
        "members": [g.member_id for g in grants if g.member_id],
        "teams": [g.team_id for g in grants if g.team_id],
    }
    return InboxAccessForm(data, initial=initial, account=request.account)


def _render_access(request, inbox: Inbox, form, rename_form=None, status=200) -> HttpResponse:
    context = _header(request, inbox, "access", rename_form) | {
        "form": form,
        "me_on_list": inbox.access == Inbox.Access.EVERYONE or is_on_access_list(request.member, inbox),
    }
    return render(request, "inboxes/settings/access.html", context, status=status)


@require_http_methods(["GET", "POST"])
@member_required
def access(request: MemberRequest, subdomain: str, inbox_id: int) -> HttpResponse:
    inbox = _inbox(request, inbox_id)
    form = _access_form(request, inbox, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            set_inbox_access(inbox, **form.cleaned_data, by=request.member)
        except ValidationError as exc:
            form.add_error("access", exc.message_dict.get("access", exc.messages))
        else:
            messages.success(request, f"Access to “{inbox.name}” was saved.")
            return redirect("inbox_settings:access", subdomain, inbox.pk)
    return _render_access(request, inbox, form, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@member_required
def new_inbox(request: MemberRequest, subdomain: str) -> HttpResponse:
    """The Create-new-inbox wizard: name, then access, then a channel (E1, A3).

    Each step posts every earlier answer again in hidden fields and all of
    them are checked again, so nothing is created until the last step.
    """
    require(request.member, "manage_inboxes")
    refusal = create_inbox_refusal(request.account)
    if refusal:
        status = 403 if request.method == "POST" else 200
        return render(request, "inboxes/settings/new.html", {"refusal": refusal}, status=status)
    if request.method == "GET":
        return _wizard(request, 1, InboxNameForm())
    return _wizard_post(request, subdomain)


def _wizard(request: MemberRequest, step: int, name_form, access_form=None, status=200) -> HttpResponse:
    if access_form is None:
        access_form = InboxAccessForm(initial={"access": Inbox.Access.EVERYONE}, account=request.account)
    context = {"step": step, "name_form": name_form, "form": access_form}
    return render(request, "inboxes/settings/new.html", context, status=status)


def _wizard_post(request: MemberRequest, subdomain: str) -> HttpResponse:
    step = {"2": 2, "3": 3}.get(request.POST.get("step"), 1)
    back = "back" in request.POST
    name_form = InboxNameForm(request.POST)
    if name_form.is_valid():
        try:
            clean_inbox_name(request.account, name_form.cleaned_data["name"])
        except ValidationError as exc:
            name_form.add_error("name", exc.message_dict["name"])
    if not name_form.is_valid() or (step == 2 and back):
        return _wizard(request, 1, name_form, status=200 if back else 400)
    if step == 1:
        return _wizard(request, 2, name_form)
    access_form = InboxAccessForm(request.POST, account=request.account)
    if not access_form.is_valid() or (step == 3 and back):
        return _wizard(request, 2, name_form, access_form, status=200 if access_form.is_valid() else 400)
    if step == 2:
        return _wizard(request, 3, name_form, access_form)
    then = NewInboxChannelForm(request.POST)
    if not then.is_valid():
        return _wizard(request, 3, name_form, access_form, status=400)
    try:
        name = name_form.cleaned_data["name"]
        inbox = add_inbox(request.account, name=name, **access_form.cleaned_data, by=request.member)
    except ValidationError as exc:
        name_form.add_error(None, exc)
        return _wizard(request, 1, name_form, status=400)
    messages.success(request, f"The inbox “{inbox.name}” was created.")
    if then.cleaned_data["then"] == "fallback":
        return redirect(fallback_editor_url(subdomain, inbox.pk))
    return redirect("inbox_settings:detail", subdomain, inbox.pk)
