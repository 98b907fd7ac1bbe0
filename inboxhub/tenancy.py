"""Resolve /a/<subdomain>/ to an account and the signed-in member, or answer 404."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest
from django_htmx.middleware import HtmxDetails
from django_scopes import scope

from inboxhub.models import Account, Membership
from inboxhub.notifications import note_seen


class MemberRequest(HttpRequest):
    account: Account
    member: Membership
    htmx: HtmxDetails


def member_required(view):
    """Let members of the URL's account in, scoped to it; everyone else gets the same 404."""

    @wraps(view)
    def wrapper(request, subdomain: str, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        account = Account.objects.filter(subdomain=subdomain).first()
        if account is None:
            raise Http404("No such account")
        with scope(account=account):
            member = (
                Membership.objects.filter(account=account, user=request.user).select_related("user").first()
            )
            if member is None:
                raise Http404("No such account")
            member.account = account
            request.account = account
            request.member = member
            if request.session.get("last_account") != account.subdomain:
                request.session["last_account"] = account.subdomain
            response = view(request, subdomain, *args, **kwargs)
            if response.status_code < 400:
                # "Signed in" for assignment mail (issue 17): a write at most once a minute.
                note_seen(member)
            return response

    return wrapper
