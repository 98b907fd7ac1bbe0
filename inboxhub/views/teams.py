"""Settings › Teams: create, rename, delete, set members (A4)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from inboxhub.forms import TeamForm
from inboxhub.permissions import require
from inboxhub.services import create_team, delete_team, update_team
from inboxhub.tenancy import MemberRequest, member_required


def _teams(request: MemberRequest):
    return request.account.teams.prefetch_related("members__user")


@require_http_methods(["GET", "POST"])
@member_required
def team_list(request: MemberRequest, subdomain: str) -> HttpResponse:
    require(request.member, "manage_account")
    form = TeamForm(request.POST or None, account=request.account)
    if request.method == "POST" and form.is_valid():
        try:
            team = create_team(
                request.account,
                name=form.cleaned_data["name"],
                members=list(form.cleaned_data["members"]),
                by=request.member,
            )
        except ValidationError as exc:
            form.add_error("name", exc.message_dict.get("name", exc.messages))
        else:
            messages.success(request, f"Team “{team.name}” was created.")
            return redirect("team_list", subdomain)
    status = 400 if form.errors else 200
    return render(request, "inboxhub/teams.html", {"teams": _teams(request), "form": form}, status=status)


@require_http_methods(["GET", "POST"])
@member_required
def team_edit(request: MemberRequest, subdomain: str, team_id: int) -> HttpResponse:
    require(request.member, "manage_account")
    team = get_object_or_404(_teams(request), pk=team_id)
    initial = {"name": team.name, "members": list(team.members.all())}
    form = TeamForm(request.POST or None, initial=initial, account=request.account)
    if request.method == "POST" and form.is_valid():
        try:
            update_team(
                team,
                name=form.cleaned_data["name"],
                members=list(form.cleaned_data["members"]),
                by=request.member,
            )
        except ValidationError as exc:
            form.add_error("name", exc.message_dict.get("name", exc.messages))
        else:
            messages.success(request, f"Team “{team.name}” was saved.")
            return redirect("team_list", subdomain)
    status = 400 if form.errors else 200
    return render(request, "inboxhub/team_edit.html", {"team": team, "form": form}, status=status)


@require_POST
@member_required
def team_delete(request: MemberRequest, subdomain: str, team_id: int) -> HttpResponse:
    require(request.member, "manage_account")
    team = get_object_or_404(request.account.teams, pk=team_id)
    name = team.name
    delete_team(team, by=request.member)
    messages.success(request, f"Team “{name}” was deleted.")
    return redirect("team_list", subdomain)
