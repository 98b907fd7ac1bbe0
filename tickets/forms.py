from django import forms

from inboxhub.models import Membership
from tickets.models import Pipeline, Stage, TicketDefaults

OWNER_FILTERS = [("", "Anyone"), ("me", "Me"), ("none", "No owner")]


class TicketDefaultsForm(forms.ModelForm):
    # Declared, with empty querysets, because a tenant query needs an account scope; __init__ fills them.
    pipeline = forms.ModelChoiceField(label="Pipeline", queryset=Pipeline.objects.none(), empty_label=None)
    stage = forms.ModelChoiceField(label="Stage", queryset=Stage.objects.none())
    owner = forms.ModelChoiceField(
        label="Member", queryset=Membership.objects.none(), required=False, empty_label="Choose a member"
    )

    class Meta:
        model = TicketDefaults
        fields = ["create_tickets", "pipeline", "stage", "priority", "owner_mode", "owner"]
        labels = {
            "create_tickets": "Treat incoming conversations as support tickets",
            "priority": "Priority",
            "owner_mode": "Ticket owner",
        }
        widgets = {"owner_mode": forms.RadioSelect}

    def __init__(self, *args, account, **kwargs):
        super().__init__(*args, **kwargs)
        # Only this account's rows are choices: another account's id fails validation (A2).
        self.fields["pipeline"].queryset = Pipeline.objects.filter(account=account)
        # Every stage of the account is a valid choice here; clean() then checks it belongs to the pipeline.
        self.fields["stage"].queryset = Stage.objects.filter(account=account).select_related("pipeline")
        self.fields["owner"].queryset = Membership.joined_members(account)
        self.fields["owner"].label_from_instance = lambda m: m.user.full_name or m.user.email

    def clean(self):
        data = super().clean()
        pipeline, stage = data.get("pipeline"), data.get("stage")
        if pipeline and stage and stage.pipeline_id != pipeline.pk:
            self.add_error(
                "stage",
                f"“{stage.name}” is not a stage of the pipeline “{pipeline.name}”. Choose one of its stages.",
            )
        if data.get("owner_mode") == TicketDefaults.OwnerMode.MEMBER and not data.get("owner"):
            self.add_error("owner", "Choose the member who owns new tickets.")
        return data

    def chosen_pipeline(self) -> Pipeline | None:
        """The pipeline the form shows: the one just picked, or the saved one; None when neither is valid."""
        try:
            return self.fields["pipeline"].clean(self["pipeline"].value())
        except forms.ValidationError:
            return None


class TicketFilterForm(forms.Form):
    """The tickets page's filters (H4); another account's pipeline is not a choice (A2)."""

    pipeline = forms.ModelChoiceField(
        label="Pipeline", queryset=Pipeline.objects.none(), required=False, empty_label=None
    )
    owner = forms.ChoiceField(label="Owner", required=False)
    priority = forms.ChoiceField(
        label="Priority", required=False, choices=[("", "Any priority"), *TicketDefaults.Priority.choices]
    )

    def __init__(self, *args, account, members, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["pipeline"].queryset = Pipeline.objects.filter(account=account)
        self.members = {str(m.pk): m for m in members}
        self.fields["owner"].choices = [
            *OWNER_FILTERS,
            *((pk, m.user.full_name or m.user.email) for pk, m in self.members.items()),
        ]

    def owner_filter(self) -> str | Membership:
        """The owner filter: "anyone", "me", "none" or the member chosen."""
        value = self.cleaned_data.get("owner") or ""
        return self.members.get(value) or value or "anyone"


class MoveTicketForm(forms.Form):
    # Every stage of the account: another account's id fails here (A2); the service refuses
    # a stage of another pipeline in the user's words.
    stage = forms.ModelChoiceField(label="Stage", queryset=Stage.objects.none())

    def __init__(self, *args, account, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["stage"].queryset = Stage.objects.filter(account=account).select_related("pipeline")


class TicketPriorityForm(forms.Form):
    priority = forms.ChoiceField(label="Priority", choices=TicketDefaults.Priority.choices)


class TicketOwnerForm(forms.Form):
    # The account's members who have joined: another account's id fails here (A2).
    owner = forms.ModelChoiceField(label="Owner", queryset=Membership.objects.none(), required=False)

    def __init__(self, *args, account, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = ticket_owner_choices(account)


def ticket_owner_choices(account):
    """Who may own a ticket: the account's members who have joined (issue 16), by name."""
    return Membership.joined_members(account).order_by("user__full_name", "user__email")
