from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from inboxhub.tenancy import MemberRequest, member_required


@require_GET
@member_required
def inbox_index(request: MemberRequest, subdomain: str, inbox_id: int | None = None) -> HttpResponse:
    inboxes = request.account.inboxes.prefetch_related("channels__fallback_address")
    inbox = get_object_or_404(inboxes, pk=inbox_id) if inbox_id else inboxes.first()
    return render(request, "inboxes/index.html", {"inboxes": inboxes, "inbox": inbox})


@require_GET
@member_required
def contact_list(request: MemberRequest, subdomain: str) -> HttpResponse:
    return render(request, "inboxes/contacts.html", {})
