"""The audit trail of settings changes: who changed what, when, with the details (A4, D8)."""

from inboxhub.models import AuditEntry, Membership


def record_change(by: Membership | None, target, action: str, **details) -> None:
    """Write one audit row for a settings change."""
    # By id: loading the account only to point at it was a query per ticket a mail opened.
    account_id = by.account_id if by is not None else target.account_id
    AuditEntry.objects.create(
        account_id=account_id,
        actor=by,
        action=action,
        target=f"{type(target).__name__} {target}",
        details=details,
    )
