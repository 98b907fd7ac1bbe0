"""The audit trail of settings changes: who changed what, when, with the details (A4, D8)."""

from inboxhub.models import AuditEntry, Membership


def record_change(by: Membership | None, target, action: str, **details) -> None:
    """Write one audit row for a settings change."""
    account = by.account if by is not None else target.account
    AuditEntry.objects.create(
        account=account, actor=by, action=action, target=f"{type(target).__name__} {target}", details=details
    )
