"""Input of the inbox settings pages: rename, channel switch, access list, new inbox (B2, B5, E1)."""

from django import forms

from inboxes.models import Inbox
from inboxes.services import INBOX_NAME_MAX_LENGTH
from inboxhub.models import Account, Membership, Team

NAME_ERRORS = {
    "required": "Give the inbox a name.",
    "max_length": f"Inbox names are at most {INBOX_NAME_MAX_LENGTH} characters.",
}


class InboxNameForm(forms.Form):
    """The name, trimmed; uniqueness is the service's check (B2)."""

    name = forms.CharField(label="Inbox name", max_length=INBOX_NAME_MAX_LENGTH, error_messages=NAME_ERRORS)


class ChannelSwitchForm(forms.Form):
    enabled = forms.TypedChoiceField(choices=[("true", "On"), ("false", "Off")], coerce=lambda v: v == "true")


class InboxAccessForm(forms.Form):
    """Everyone, or specific users and teams of this account; another account's ids are invalid (A2)."""

    access = forms.ChoiceField(
        label="Who has access",
        choices=Inbox.Access.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose who has access to this inbox."},
    )
    members = forms.ModelMultipleChoiceField(
        label="Users",
        queryset=Membership.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Choose users of this account only."},
    )
    teams = forms.ModelMultipleChoiceField(
        label="Teams",
        queryset=Team.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Choose teams of this account only."},
    )

    def __init__(self, *args, account: Account, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["members"].queryset = Membership.joined_members(account)
        self.fields["teams"].queryset = Team.objects.filter(account=account).prefetch_related("members")

    def clean(self):
        data = super().clean()
        if (
            data.get("access") == Inbox.Access.SPECIFIC
            and not data.get("members")
            and not data.get("teams")
            and not self.has_error("members")
            and not self.has_error("teams")
        ):
            self.add_error(
                "access", "Choose at least one user or team, or make the inbox available to everyone."
            )
        return data

    def picker(self) -> dict:
        """What the picker lists: every member and team, with whether each is checked."""
        chosen_members = {str(v) for v in self._chosen("members")}
        chosen_teams = {str(v) for v in self._chosen("teams")}
        return {
            "members": [(m, str(m.pk) in chosen_members) for m in self.fields["members"].queryset],
            "teams": [(t, str(t.pk) in chosen_teams) for t in self.fields["teams"].queryset],
        }

    def _chosen(self, name: str) -> list:
        if self.is_bound:
            return self.data.getlist(name) if hasattr(self.data, "getlist") else self.data.get(name, [])
        return [getattr(v, "pk", v) for v in self.initial.get(name, [])]


class NewInboxChannelForm(forms.Form):
    """The wizard's last step: set up the fallback address now, or connect a channel later (E1)."""

    then = forms.ChoiceField(choices=[("fallback", "Set up email now"), ("later", "Connect a channel later")])
