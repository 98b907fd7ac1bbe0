"""Create an account with its first super admin (A1), as the sign-up page does."""

import getpass

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from inboxhub.models import Account
from inboxhub.provisioning import provision_account


class Command(BaseCommand):
    help = "Create an account with its super admin, default inbox, fallback address and ticket pipeline."

    def add_arguments(self, parser):
        parser.add_argument("--subdomain", required=True)
        parser.add_argument("--company", required=True, help="Company name")
        parser.add_argument("--email", required=True, help="Super admin's email")
        parser.add_argument("--name", required=True, help="Super admin's full name")
        parser.add_argument("--tier", default=Account.Tier.FREE, choices=Account.Tier.values)
        parser.add_argument("--password", help="Super admin's password (asked for when omitted)")

    def handle(self, *args, **options):
        password = options["password"] or getpass.getpass("Password for the super admin: ")
        try:
            owner = provision_account(
                subdomain=options["subdomain"],
                company_name=options["company"],
                full_name=options["name"],
                email=options["email"],
                password=password,
                tier=options["tier"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(f"Created account {owner.account.subdomain} with super admin {owner.user.email}")
