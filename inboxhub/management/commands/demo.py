"""Seed the demo accounts `acme` and `globex`, and a week of Acme's mail (idempotent)."""

import json

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from inboxes.services import create_inbox
from inboxhub.demo_mail import seed_week
from inboxhub.models import Account, Membership, Team, User
from inboxhub.provisioning import provision_account
from inboxhub.services import add_member
from routing.models import AssignmentRule
from routing.selectors import assignment_rule_for
from routing.services import update_assignment_rule
from tickets.models import Pipeline, TicketDefaults
from tickets.selectors import ticket_defaults_for
from tickets.services import update_ticket_defaults

PASSWORD = "inboxhub-demo"  # noqa: S105 - published demo credentials, documented in the README

ACCOUNTS = [
    {
        "subdomain": "acme",
        "company_name": "Acme",
        "tier": Account.Tier.PROFESSIONAL,
        "owner": ("admin@acme.example", "Alex Admin"),
        "members": [
            ("lead@acme.example", "Lee Lead", "service_hub", "account_admin"),
            ("ada@acme.example", "Ada Lovelace", "service_hub", "agent"),
            ("ben@acme.example", "Ben Carter", "sales_hub", "agent"),
            ("fay@acme.example", "Fay Free", "free", "agent"),
        ],
        "teams": {"Support": ["ada@acme.example", "ben@acme.example", "fay@acme.example"]},
        "inboxes": ["Sales"],
    },
    {
        "subdomain": "globex",
        "company_name": "Globex",
        "tier": Account.Tier.FREE,
        "owner": ("admin@globex.example", "Gale Admin"),
        "members": [],
        "teams": {},
        "inboxes": [],
    },
]


class Command(BaseCommand):
    help = "Create the demo accounts acme and globex with a week of Acme's mail; safe to run again."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the seeded accounts as JSON.")
        parser.add_argument(
            "--without-mail",
            action="store_true",
            help="Only accounts, members and inboxes, no mail (for tests that start from an empty inbox).",
        )

    def handle(self, *args, **options):
        for spec in ACCOUNTS:
            seed_account(spec)
        if not options["without_mail"]:
            # After the accounts' transaction: each mail commits to the spool on its own, as real mail does.
            seed_week(Account.objects.get(subdomain="acme"))
        if options["json"]:
            self.stdout.write(json.dumps({"accounts": [describe(spec["subdomain"]) for spec in ACCOUNTS]}))
        elif options["verbosity"] >= 1:
            self.stdout.write(f"Demo accounts ready: acme, globex (password {PASSWORD})")


@transaction.atomic
def seed_account(spec: dict) -> None:
    email, name = spec["owner"]
    account = Account.objects.filter(subdomain=spec["subdomain"]).first()
    if account is None:
        owner = provision_account(
            subdomain=spec["subdomain"],
            company_name=spec["company_name"],
            full_name=name,
            email=email,
            password=PASSWORD,
            tier=spec["tier"],
        )
        account = owner.account
    with scope(account=account):
        owner = Membership.objects.get(account=account, user__email=email)
        for m_email, m_name, seat, permission in spec["members"]:
            if not Membership.objects.filter(account=account, user__email=m_email).exists():
                existing = User.objects.filter(email=m_email).exists()
                add_member(
                    account,
                    email=m_email,
                    full_name=m_name,
                    password=None if existing else PASSWORD,
                    seat=seat,
                    permission=permission,
                    by=owner,
                )
        # The demo's team has worked here for a while: signed in before, so joined (issue 16).
        Membership.objects.filter(account=account, joined_at__isnull=True).update(joined_at=timezone.now())
        for team_name, emails in spec["teams"].items():
            team, _ = Team.objects.get_or_create(account=account, name=team_name)
            team.members.set(Membership.objects.filter(account=account, user__email__in=emails))
        for inbox_name in spec["inboxes"]:
            if not account.inboxes.filter(name=inbox_name).exists():
                create_inbox(account, name=inbox_name)
        if spec["subdomain"] == "acme":
            # Acme's default inbox assigns new conversations among team Support's available paid seats
            # (ada and ben; fay's free seat is never a candidate), so a first mail arrives assigned (D).
            rule = assignment_rule_for(account.inboxes.get(is_default=True))
            if rule.pk is None:
                update_assignment_rule(
                    rule,
                    enabled=True,
                    assign_to=AssignmentRule.AssignTo.SPECIFIC,
                    members=[],
                    teams=[Team.objects.get(account=account, name="Support")],
                    only_available=True,
                    by=owner,
                )
            # Acme's default inbox makes incoming conversations tickets, owned by their owner (C11).
            defaults = ticket_defaults_for(account.inboxes.get(is_default=True))
            if not defaults.create_tickets:
                pipeline = Pipeline.objects.get(account=account, is_default=True)
                update_ticket_defaults(
                    defaults,
                    create_tickets=True,
                    pipeline=pipeline,
                    stage=pipeline.stages.order_by("position").first(),
                    priority=TicketDefaults.Priority.MEDIUM,
                    owner_mode=TicketDefaults.OwnerMode.CONVERSATION_OWNER,
                    owner=None,
                    by=owner,
                )


def describe(subdomain: str) -> dict:
    with scopes_disabled():
        account = Account.objects.get(subdomain=subdomain)
        members = account.memberships.select_related("user").order_by("pk")
        inboxes = account.inboxes.prefetch_related("channels__fallback_address").order_by("pk")
        return {
            "subdomain": account.subdomain,
            "tier": account.tier,
            "company_name": account.company_name,
            "users": [{"email": m.user.email, "permission": m.permission, "seat": m.seat} for m in members],
            "inboxes": [
                {
                    "name": inbox.name,
                    "default": inbox.is_default,
                    "fallback_address": next(
                        (
                            c.fallback_address.address
                            for c in inbox.channels.all()
                            if c.kind == "fallback_email"
                        ),
                        None,
                    ),
                }
                for inbox in inboxes
            ],
        }
