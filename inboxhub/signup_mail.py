"""The two mails sign-up sends, and the link that proves a founder's address (issue 16 point 3).

Sign-up answers the same whether or not the email already has a login: a
new person gets a link to confirm their address, stored with their new
account and retried like every mail InboxHub sends (`inboxhub.outbound`);
someone who has a login gets a note saying so, with where to sign in, which
has no account to be kept under and goes to a worker as a password reset
does. Neither is sent in the request, so the page's time tells nothing.
Until the founder opens the link, nothing is sent from the account
(`Account.unverified_founder`).
"""

from django.core import signing
from django.core.mail import EmailMessage

from inboxhub.models import OutboundEmail, User
from inboxhub.outbound import hand_to_worker, queue_email

SIGNUP_MAIL_TASK = "inboxhub.tasks.send_signup_mail"
_SALT = "inboxhub.signup.verify-email"
# As long as invite links live.
VERIFY_MAX_AGE_SECONDS = 60 * 60 * 24 * 3


def queue_founder_confirmation(owner, *, body: str) -> OutboundEmail:
    """The link that confirms a new account's founder's address, kept with the account until sent."""
    subject = "Confirm your email address for InboxHub"
    kind = OutboundEmail.Kind.ADDRESS_VERIFICATION
    return queue_email(owner.account, kind=kind, to=owner.user.email, subject=subject, body=body)


def queue_login_note(*, to: str, body: str) -> None:
    """Tell someone who signed up with an address that has a login; no account keeps this one."""
    hand_to_worker(SIGNUP_MAIL_TASK, to=to, subject="You already have an InboxHub login", body=body)


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
