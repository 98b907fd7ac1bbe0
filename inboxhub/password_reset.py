"""Password-reset mail, written and sent by a worker (issue 16).

The reset page hands the address to a task and answers at once, whether or
not a login has that address: no user lookup, token or SMTP conversation
happens in the request, so its time tells nothing. The token is made in the
worker, so it never passes through the broker or the database.
"""

from django.contrib.auth.forms import PasswordResetForm
from django.core.mail import EmailMessage
from django.template import loader

from inboxhub.models import User
from inboxhub.outbound import hand_to_worker

RESET_TASK = "inboxhub.tasks.send_password_reset_email"


class _ResetMail(PasswordResetForm):
    def get_users(self, email):
        # Invited members who never set a password are reached too: a reset renews an expired invite.
        return User.objects.filter(email__iexact=email, is_active=True)

    def send_mail(self, subject_template_name, email_template_name, context, from_email, to_email, **_):
        # Django's own logs a failed send and carries on; raised, the task tries again later.
        subject = "".join(loader.render_to_string(subject_template_name, context).splitlines())
        body = loader.render_to_string(email_template_name, context)
        # RFC 3834: automatic mail, as the rest of InboxHub's own mail.
        headers = {"Auto-Submitted": "auto-generated"}
        EmailMessage(subject, body, from_email, [to_email], headers=headers).send()


def queue_password_reset(email: str, *, domain: str, use_https: bool) -> None:
    """Hand the reset of `email` to a worker (no account keeps it: `hand_to_worker`)."""
    hand_to_worker(RESET_TASK, email=email, domain=domain, use_https=use_https)


def send_password_reset(email: str, *, domain: str, use_https: bool) -> None:
    """Mail a link that sets a new password to every active login with this address (none: nothing)."""
    form = _ResetMail({"email": email})
    if form.is_valid():
        form.save(domain_override=domain, use_https=use_https)
