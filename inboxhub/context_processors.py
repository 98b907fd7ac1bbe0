from inboxhub.models import Account


def navigation(request):
    """The signed-in person's accounts for the switcher, and the current one."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        # Account is not tenant-scoped: this lists only the person's own accounts.
        "my_accounts": Account.objects.filter(memberships__user=user).order_by("company_name"),
        "current_account": getattr(request, "account", None),
        "current_member": getattr(request, "member", None),
    }
