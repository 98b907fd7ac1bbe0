"""The search page (issue 17): one box over contact, subject and message text, with filters."""

from django.http import HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from inboxes.permissions import visible_inboxes
from inboxes.search import search_conversations
from inboxes.search_forms import SearchForm
from inboxhub.models import Membership
from inboxhub.tenancy import MemberRequest, member_required


@require_GET
@member_required
def search(request: MemberRequest, subdomain: str) -> HttpResponse:
    """Only inboxes the member sees are searched (B6); the filters narrow them further."""
    inboxes = list(visible_inboxes(request.member))
    members = Membership.joined_members(request.account)
    form = SearchForm(
        request.GET or None,
        inboxes=inboxes,
        members=list(members.order_by("user__full_name", "pk")),
        me=request.member,
    )
    context = {"form": form, "results": None}
    if form.is_valid() and form.cleaned_data["q"]:
        data = form.cleaned_data
        page = data["page"] or 1
        context["results"] = search_conversations(
            request.member, data["q"], form.filters(), order=data["order"] or "relevance", page=page
        )
        context["previous_url"] = _page_url(request.GET, page - 1) if page > 1 else ""
        context["next_url"] = _page_url(request.GET, page + 1)
        context["thread_base"] = reverse("inboxes:thread", args=[subdomain, 0]).removesuffix("0/")
    return render(request, "inboxes/search.html", context, status=400 if form.errors else 200)


def _page_url(query: QueryDict, page: int) -> str:
    params = query.copy()
    params["page"] = str(page)
    return f"?{params.urlencode()}"
