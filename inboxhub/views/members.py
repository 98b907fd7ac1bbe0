"""Settings › Members: add, change seat and permission, remove (A4)."""

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from inboxhub.forms import AddMemberForm, ChangeMemberForm
from inboxhub.models import Invitation, Membership, OutboundEmail
from inboxhub.outbound import failed_invites, queue_email
from inboxhub.permissions import require
from inboxhub.services import add_member, change_member, remove_member, withdraw_invitation
from inboxhub.tenancy import MemberRequest, member_required


def _members(request: MemberRequest):
    return request.account.memberships.select_related("user").prefetch_related("teams")


@dataclass(frozen=True)
class PendingRow:
    """One person invited and not joined yet, shown alike whether or not the email had a login
    (issue 16 point 2): a new person's membership waiting for its password, or an invitation."""

    name: str
    email: str
    seat: str
    paid: bool
    permission: str


def _pending(request: MemberRequest, waiting: list[Membership]) -> list[PendingRow]:
    rows = [
        PendingRow(
            m.user.full_name,
            m.user.email,
            m.get_seat_display(),
            m.has_paid_seat,
            m.get_permission_display(),
        )
        for m in waiting
    ]
    rows += [
        PendingRow(
            i.full_name,
            i.email,
            i.get_seat_display(),
            i.seat != Membership.Seat.FREE,
            i.get_permission_display(),
        )
        for i in request.account.invitations.all()
    ]
    return sorted(rows, key=lambda row: (row.name.casefold(), row.email))


def _page(request: MemberRequest, form: AddMemberForm) -> dict:
    members = list(_members(request))
    joined = [m for m in members if m.has_joined]
    pending = _pending(request, [m for m in members if not m.has_joined])
    return {
        "members": joined,
        "pending": pending,
        "people": len(joined) + len(pending),
        "form": form,
        "failed_invites": failed_invites(request.account),
    }


def send_invite(request: MemberRequest, member: Membership) -> None:
    user = member.user
    link = request.build_absolute_uri(
        reverse(
            "invite_accept",
            kwargs={
                "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
                "token": default_token_generator.make_token(user),
            },
        )
    )
    context = {"member": member, "inviter": request.member.user, "account": request.account, "link": link}
    queue_email(
        request.account,
        kind=OutboundEmail.Kind.INVITE,
        to=user.email,
        subject=f"{request.member.user.full_name} invited you to {request.account.company_name} on InboxHub",
        body=render_to_string("inboxhub/email/invite.txt", context),
    )


def send_invitation(request: MemberRequest, invitation: Invitation) -> None:
    """Mail someone who already has a login an invitation they accept while signed in (A4)."""
    context = {
        "invitation": invitation,
        "inviter": request.member.user,
        "account": request.account,
        "link": request.build_absolute_uri(reverse("invitations")),
    }
    queue_email(
        request.account,
        kind=OutboundEmail.Kind.INVITE,
        to=invitation.email,
        subject=f"{request.member.user.full_name} invited you to {request.account.company_name} on InboxHub",
        body=render_to_string("inboxhub/email/invitation.txt", context),
    )


def added_message(data: dict, company_name: str) -> str:
    name, email = data["full_name"], data["email"]
    if data["how"] == "password":
        return (
            f"{name} was added to {company_name}. If {email} already has an InboxHub login, "
            "they were sent an invitation instead and keep their own password."
        )
    return f"{name} is invited: a link is on its way to {email}."


@require_GET
@member_required
def member_list(request: MemberRequest, subdomain: str) -> HttpResponse:
    require(request.member, "manage_account")
    return render(request, "inboxhub/members.html", _page(request, AddMemberForm()))


@require_POST
@member_required
def member_add(request: MemberRequest, subdomain: str) -> HttpResponse:
    require(request.member, "manage_account")
    form = AddMemberForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            added = add_member(
                request.account,
                email=data["email"],
                full_name=data["full_name"],
                password=data["password"] if data["how"] == "password" else None,
                seat=data["seat"],
                permission=data["permission"],
                by=request.member,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            if isinstance(added, Invitation):
                send_invitation(request, added)
            elif not added.user.has_usable_password():
                send_invite(request, added)
            # Worded from what the admin typed and chose, never from whether the email has a login.
            messages.success(request, added_message(data, request.account.company_name))
            return redirect("member_list", subdomain)
    return render(request, "inboxhub/members.html", _page(request, form), status=400)


@require_http_methods(["GET", "POST"])
@member_required
def member_edit(request: MemberRequest, subdomain: str, member_id: int) -> HttpResponse:
    require(request.member, "manage_account")
    member = get_object_or_404(_members(request), pk=member_id)
    form = ChangeMemberForm(
        request.POST or None, initial={"seat": member.seat, "permission": member.permission}
    )
    if request.method == "POST" and form.is_valid():
        try:
            change_member(member, **form.cleaned_data, by=request.member)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Saved {member.user.full_name}'s seat and permission.")
            if member.pk == request.member.pk and not member.is_super_admin:
                # Demoted themselves: the members page is no longer theirs to see.
                return redirect("home")
            return redirect("member_list", subdomain)
    status = 400 if form.errors else 200
    return render(request, "inboxhub/member_edit.html", {"member": member, "form": form}, status=status)


@require_POST
@member_required
def member_remove(request: MemberRequest, subdomain: str, member_id: int) -> HttpResponse:
    require(request.member, "manage_account")
    member = get_object_or_404(_members(request), pk=member_id)
    leaving = member.pk == request.member.pk
    try:
        remove_member(member, by=request.member)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if not member.has_joined:
            # Never joined: worded as withdrawing an invitation is (issue 16 point 2).
            messages.success(request, f"The invitation to {member.user.email} was withdrawn.")
        else:
            messages.success(
                request, f"{member.user.full_name} was removed from {request.account.company_name}."
            )
        if leaving:
            return redirect("home")
    return redirect("member_list", subdomain)


@require_POST
@member_required
def pending_withdraw(request: MemberRequest, subdomain: str) -> HttpResponse:
    """Withdraw whatever waits for the posted email: the rows name no id, so the page's source does
    not tell an invitation to an existing login from a new person's membership (issue 16 point 2)."""
    require(request.member, "manage_account")
    posted = request.POST.get("email", "").strip()
    invitation = request.account.invitations.filter(email__iexact=posted).first()
    if invitation is not None:
        withdraw_invitation(invitation, by=request.member)
        email = invitation.email
    else:
        waiting = _members(request).filter(user__email__iexact=posted)
        member = next((m for m in waiting if not m.has_joined), None)
        if member is None:
            raise Http404("No invitation to this address is waiting.")
        remove_member(member, by=request.member)
        email = member.user.email
    messages.success(request, f"The invitation to {email} was withdrawn.")
    return redirect("member_list", subdomain)


@require_POST
@member_required
def invitation_withdraw(request: MemberRequest, subdomain: str, invitation_id: int) -> HttpResponse:
    require(request.member, "manage_account")
    invitation = get_object_or_404(request.account.invitations, pk=invitation_id)
    withdraw_invitation(invitation, by=request.member)
    messages.success(request, f"The invitation to {invitation.email} was withdrawn.")
    return redirect("member_list", subdomain)
