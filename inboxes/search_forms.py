"""Input of the search page (issue 17): the words and the filters, each limited to this account."""

from django import forms

from inboxes.models import Conversation, Inbox
from inboxes.search import MAX_QUERY_LENGTH, UNASSIGNED, Filters
from inboxhub.models import Membership

ORDERS = [("relevance", "Best match"), ("newest", "Newest")]


class SearchForm(forms.Form):
    """Inbox and assignee choices come from the searcher's account: another account's id is invalid (A2)."""

    q = forms.CharField(
        label="Search conversations",
        max_length=MAX_QUERY_LENGTH,
        required=False,
        # The inbox page's box has the same id: the `/` shortcut focuses it on either page.
        widget=forms.SearchInput({"id": "inbox-search", "autocomplete": "off"}),
    )
    inbox = forms.TypedChoiceField(label="Inbox", required=False, coerce=int, empty_value=None)
    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "Any status"), *Conversation.Status.choices]
    )
    assignee = forms.ChoiceField(label="Assignee", required=False)
    since = forms.DateField(label="Messages from", required=False, widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(label="Messages to", required=False, widget=forms.DateInput({"type": "date"}))
    order = forms.ChoiceField(label="Sort by", required=False, choices=ORDERS)
    page = forms.IntegerField(required=False, min_value=1, max_value=1000, widget=forms.HiddenInput)

    def __init__(self, *args, inboxes: list[Inbox], members: list[Membership], me: Membership, **kwargs):
        super().__init__(*args, label_suffix="", **kwargs)
        self.inboxes = inboxes
        self.fields["inbox"].choices = [("", "All inboxes"), *((inbox.pk, inbox.name) for inbox in inboxes)]
        people = [(str(m.pk), "Me" if m.pk == me.pk else m.user.full_name or m.user.email) for m in members]
        self.fields["assignee"].choices = [("", "Anyone"), (UNASSIGNED, "Unassigned"), *people]

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "The end of the date range is before its start.")
        return cleaned

    def filters(self) -> Filters:
        data = self.cleaned_data
        inbox_ids = [data["inbox"]] if data.get("inbox") else [inbox.pk for inbox in self.inboxes]
        return Filters(
            inbox_ids=inbox_ids,
            status=data.get("status") or "",
            assignee=data.get("assignee") or "",
            since=data.get("since"),
            until=data.get("until"),
        )
