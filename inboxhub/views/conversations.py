"""Working a conversation from its thread page: assign, reassign, unassign, close, reopen (H4, B6, B7)."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from inboxes.models import Conversation
from inboxes.permissions import visible_inboxes
from inboxes.services import assign_conversation
from inboxhub.models import Membership
from inboxhub.tenancy import MemberRequest, member_required
from inboxhub.workflows import close_conversation, reopen_conversation


class AssignForm(forms.Form):
    # Empty: unassign. Another account's id is not a choice, so it can never be assigned (A2).
    assignee = forms.ModelChoiceField(queryset=Membership.objects.none(), required=False)

    def __init__(self, *args, account, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = Membership.joined_members(account)


def _conversation(request: MemberRequest, conversation_id: int) -> Conversation:
    # Conversations of inboxes the member cannot see answer 404, as a missing one (B6, A2).
    visible = request.account.conversations.filter(inbox__in=visible_inboxes(request.member))
    return get_object_or_404(visible.select_related("inbox", "assignee__user"), pk=conversation_id)


def _thread(conversation: Conversation):
    return redirect("inboxes:thread", conversation.inbox.account.subdomain, conversation.pk)


@require_POST
@member_required
def assign(request: MemberRequest, subdomain: str, conversation_id: int) -> HttpResponse:
    conversation = _conversation(request, conversation_id)
    form = AssignForm(request.POST, account=request.account)
    if not form.is_valid():
        raise Http404("No such member")  # another account's member answers as a missing one (A2)
    assignee = request.member if request.POST.get("to") == "me" else form.cleaned_data["assignee"]
    try:
        assign_conversation(conversation, assignee, by=request.member)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        who = (assignee.user.full_name or assignee.user.email) if assignee else "nobody"
        messages.success(request, f"Assigned to {who}." if assignee else "Unassigned.")
    return _thread(conversation)


@require_POST
@member_required
def close(request: MemberRequest, subdomain: str, conversation_id: int) -> HttpResponse:
    conversation = _conversation(request, conversation_id)
    close_conversation(conversation, by=request.member)
    messages.success(request, "Conversation closed.")
    return _thread(conversation)


@require_POST
@member_required
def reopen(request: MemberRequest, subdomain: str, conversation_id: int) -> HttpResponse:
    conversation = _conversation(request, conversation_id)
    reopen_conversation(conversation, by=request.member)
    messages.success(request, "Conversation reopened.")
    return _thread(conversation)
