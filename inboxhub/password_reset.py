"""Password-reset mail, written and sent by a worker (issue 16).

The reset page hands the address to a task and answers at once, whether or
not a login has that address: no user lookup, token or SMTP conversation
happens in the request, so its time tells nothing. The token is made in the
worker, so it never passes through the broker or the database.
"""

from django.contrib.auth.forms import PasswordResetForm

from inboxhub.models import User
from inboxhub.outbound import hand_to_worker

RESET_TASK = "inboxhub.tasks.send_password_reset_email"


class _ResetMail(PasswordResetForm):
    def get_users(self, email):
        # Invited members who never set a password are reached too: a reset renews an expired invite.
        return User.objects.filter(email__iexact=email, is_active=True)


def queue_password_reset(email: str, *, domain: str, use_https: bool) -> None:
    """Hand the reset of `email` to a worker (no account keeps it: `hand_to_worker`)."""
    hand_to_worker(RESET_TASK, email=email, domain=domain, use_https=use_https)


def send_password_reset(email: str, *, domain: str, use_https: bool) -> None:
    """Mail a link that sets a new password to every active login with this address (none: nothing)."""
    form = _ResetMail({"email": email})
    if form.is_valid():
        form.save(domain_override=domain, use_https=use_https)
