from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from inboxhub.permissions import can, require
from inboxhub.tenancy import MemberRequest, member_required


@require_GET
@member_required
def settings_home(request: MemberRequest, subdomain: str) -> HttpResponse:
    require(request.member, "manage_inboxes")
    if can(request.member, "manage_account"):
        return redirect("member_list", subdomain)
    return render(request, "inboxhub/settings_home.html")
