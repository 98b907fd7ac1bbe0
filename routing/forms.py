from django import forms

from inboxhub.models import Membership, Team
from routing.models import AssignmentRule
from routing.selectors import teams_with_paid_counts
from routing.services import free_seat_refusal

FREE_SEAT_NOTE = "Free seat: can't be assigned automatically"
CAPACITY_RANGE = "Enter a number from 1 to 999, or leave it empty for no limit."


class AssignmentRuleForm(forms.ModelForm):
    # Declared, with empty querysets, because a tenant query needs an account scope; __init__ fills them.
    members = forms.ModelMultipleChoiceField(
        label="Members",
        queryset=Membership.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    teams = forms.ModelMultipleChoiceField(
        label="Teams", queryset=Team.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )
    capacity = forms.IntegerField(
        label="Most open conversations per member",
        required=False,
        min_value=1,
        max_value=999,
        error_messages={
            "min_value": CAPACITY_RANGE,
            "max_value": CAPACITY_RANGE,
            "invalid": CAPACITY_RANGE,
        },
    )

    class Meta:
        model = AssignmentRule
        fields = ["enabled", "assign_to", "members", "teams", "only_available", "capacity"]
        labels = {
            "enabled": "Automatic assignment of conversations",
            "assign_to": "Assign to",
            "only_available": "Assign only to available users",
        }
        widgets = {
            "assign_to": forms.RadioSelect,
        }

    def __init__(self, *args, account, read_only: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        # Only this account's members and teams are choices: another account's id fails validation (A2).
        self.fields["members"].queryset = Membership.joined_members(account)
        self.fields["teams"].queryset = teams_with_paid_counts(account)
        if read_only:
            for field in self.fields.values():
                field.disabled = True

    def clean_members(self):
        members = self.cleaned_data["members"]
        if refusal := free_seat_refusal(members):
            raise forms.ValidationError(refusal)
        return members

    def _picked(self, name: str) -> set[str]:
        value = self[name].value() or []
        return {str(v.pk if hasattr(v, "pk") else v) for v in value}

    def member_options(self) -> list[dict]:
        """The members as the picker shows them: paid seats selectable, free ones not (D4)."""
        picked = self._picked("members")
        return [
            {
                "member": m,
                "checked": str(m.pk) in picked and m.has_paid_seat,
                "free": not m.has_paid_seat,
            }
            for m in self.fields["members"].queryset
        ]

    def team_options(self) -> list[dict]:
        picked = self._picked("teams")
        return [{"team": t, "checked": str(t.pk) in picked} for t in self.fields["teams"].queryset]
