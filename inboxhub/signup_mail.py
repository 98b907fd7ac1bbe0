"""The two mails sign-up sends, and the link that proves a founder's address (issue 16 point 3).

Sign-up answers the same whether or not the email already has a login: a
new person gets a link to confirm their address; someone who has a login
gets a note saying so, with where to sign in. Both go out from a worker (as
password resets do, `inboxhub.password_reset`), so the page's time tells
nothing either. Until the founder opens the link, nothing is sent from the
account (`Account.unverified_founder`).
"""

import logging

from django.core import signing
from django.core.mail import EmailMessage

from inboxhub.celery import app as celery_app
from inboxhub.models import User

logger = logging.getLogger(__name__)

SIGNUP_MAIL_TASK = "inboxhub.tasks.send_signup_mail"
_SALT = "inboxhub.signup.verify-email"
# As long as invite links live.
VERIFY_MAX_AGE_SECONDS = 60 * 60 * 24 * 3


def queue_signup_mail(*, to: str, subject: str, body: str) -> None:
    """Hand one sign-up mail to a worker; a broker that cannot take it is logged, not shown."""
    try:
        celery_app.signature(
            SIGNUP_MAIL_TASK, kwargs={"to": to, "subject": subject, "body": body}
        ).apply_async()
    except Exception:
        logger.exception("sign-up mail could not be queued")


def send_signup_mail(*, to: str, subject: str, body: str) -> None:
    # RFC 3834: automatic mail, as the rest of InboxHub's own mail.
    EmailMessage(subject=subject, body=body, to=[to], headers={"Auto-Submitted": "auto-generated"}).send()


def verification_token(user: User) -> str:
    """A signed, expiring token naming the login and the address it proves."""
    return signing.dumps({"user": user.pk, "email": user.email}, salt=_SALT, compress=True)


def user_from_token(token: str) -> User | None:
    """The login a token proves the address of, or None for a bad, expired or outdated token."""
    try:
        data = signing.loads(token, salt=_SALT, max_age=VERIFY_MAX_AGE_SECONDS)
    except signing.BadSignature:
        return None
    return User.objects.filter(
        pk=data.get("user"), email__iexact=data.get("email", ""), is_active=True
    ).first()
