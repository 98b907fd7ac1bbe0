"""Who gets a conversation, and why: the decision of automatic assignment, apart from storing it (D3–D8).

`decide` weighs a rule's people against their load and returns the choice
with every candidate and every exclusion in words. It changes nothing, so the
same code serves a real assignment (routing.services) and the dry run that
replays past conversations against an unsaved rule.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db.models import Count, Q

from inboxes.models import Contact, Conversation, Inbox
from inboxhub.models import Membership
from routing.models import AssigneeState, AssignmentRule

FREE_SEAT = "free seat"
AWAY = "away"
NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Plan:
    """What a rule says, whether saved or only typed into the Automation tab (the dry run)."""

    assign_to: str
    only_available: bool
    capacity: int | None
    members: tuple[Membership, ...]

    def snapshot(self, rule: AssignmentRule | None = None) -> dict:
        return {
            "assign_to": self.assign_to,
            "only_available": self.only_available,
            "capacity": self.capacity,
            "members": [member.pk for member in self.members],
            "teams": sorted(team.pk for team in rule.teams.all()) if rule is not None and rule.pk else [],
        }


@dataclass
class Load:
    open: int = 0
    last_assigned_at: datetime | None = None


@dataclass
class Decision:
    chosen: Membership | None
    summary: str
    candidates: list[tuple[Membership, Load]] = field(default_factory=list)
    excluded: list[tuple[Membership, str]] = field(default_factory=list)
    # D6: the contact's owner is away; they get an email about the new message.
    notify_owner: Membership | None = None

    def candidates_json(self) -> list[dict]:
        return [{"member": m.pk, "name": name_of(m), "open": load.open} for m, load in self.candidates]

    def excluded_json(self) -> list[dict]:
        return [{"member": m.pk, "name": name_of(m), "reason": reason} for m, reason in self.excluded]


def name_of(member: Membership) -> str:
    return member.user.full_name or member.user.email


def plan_of(rule: AssignmentRule) -> Plan:
    """The saved rule's plan, its teams' current members included (one query)."""
    return plan_for(
        rule.account_id,
        assign_to=rule.assign_to,
        only_available=rule.only_available,
        capacity=rule.capacity,
        members=rule.members.values("pk"),
        teams=rule.teams.values("pk"),
    )


def plan_for(account_id: int, *, assign_to, only_available, capacity, members, teams) -> Plan:
    """A plan from a rule's values, saved or not: the listed members and the teams' current members."""
    people = (
        Membership.joined_members(account_id)
        .filter(Q(pk__in=members) | Q(teams__in=teams))
        .distinct()
        .order_by("pk")
    )
    return Plan(assign_to, only_available, capacity, tuple(people))


def loads_of(inbox: Inbox, members) -> dict[int, Load]:
    """Each member's open conversations in the inbox and when the engine last gave them one (two queries)."""
    ids = [member.pk for member in members]
    loads = {pk: Load() for pk in ids}
    if not ids:
        return loads
    counts = (
        Conversation.objects.filter(
            account_id=inbox.account_id, inbox=inbox, status=Conversation.Status.OPEN, assignee__in=ids
        )
        .order_by()
        .values_list("assignee")
        .annotate(n=Count("*"))  # count(*): answered from the partial index alone
    )
    for pk, n in counts:
        loads[pk].open = n
    states = AssigneeState.objects.filter(account_id=inbox.account_id, inbox=inbox, member__in=ids)
    for pk, moment in states.values_list("member", "last_assigned_at"):
        loads[pk].last_assigned_at = moment
    return loads


def decide_for(plan: Plan, conversation: Conversation, loads: dict[int, Load]) -> Decision:
    """As `decide`; a conversation a machine started (a bounce, an auto-reply) goes to nobody (RFC 3834)."""
    if conversation.automated_reason:
        return Decision(
            None,
            f"Left unassigned: its first message is {conversation.automated_reason}; "
            "a machine's mail starts nothing automatic.",
        )
    return decide(plan, conversation.contact, loads)


def decide(plan: Plan, contact: Contact, loads: dict[int, Load]) -> Decision:
    """The member a new conversation of this contact goes to under the plan, or nobody, and why (D3–D7)."""
    if plan.assign_to == AssignmentRule.AssignTo.CONTACT_OWNER:
        return _to_contact_owner(plan, contact, loads)
    return _to_the_least_busy(plan, plan.members, loads)


def _exclusion(plan: Plan, member: Membership, load: Load) -> str | None:
    if not member.has_paid_seat:
        return FREE_SEAT
    if plan.only_available and member.availability != Membership.Availability.AVAILABLE:
        return AWAY
    if plan.capacity is not None and load.open >= plan.capacity:
        return f"at capacity ({load.open} open, limit {plan.capacity})"
    return None


def _to_the_least_busy(plan: Plan, people, loads: dict[int, Load]) -> Decision:
    candidates, excluded = [], []
    for member in people:
        load = loads.get(member.pk, Load())
        reason = _exclusion(plan, member, load)
        if reason:
            excluded.append((member, reason))
        else:
            candidates.append((member, load))
    rest = " · ".join(f"{name_of(m)} {reason}" for m, reason in excluded)
    if not candidates:
        why = "nobody on the list is eligible" if people else "the rule lists nobody"
        return Decision(None, _join(f"Left unassigned: {why}", rest), candidates, excluded)
    # D7: fewest open first; ties to whom the engine assigned least recently (never: first), then the oldest.
    candidates.sort(key=lambda c: (c[1].open, c[1].last_assigned_at or NEVER, c[0].pk))
    chosen, load = candidates[0]
    why = (
        f"{load.open} open, fewest of {len(candidates)} candidates"
        if len(candidates) > 1
        else (f"{load.open} open, the only candidate")
    )
    state = "available" if chosen.availability == Membership.Availability.AVAILABLE else "away"
    return Decision(
        chosen, _join(f"Assigned to {name_of(chosen)}: {state}, {why}", rest), candidates, excluded
    )


def _to_contact_owner(plan: Plan, contact: Contact, loads: dict[int, Load]) -> Decision:
    owner = contact.owner
    if owner is None:
        return Decision(None, f"Left unassigned: {contact} has no owner.")
    load = loads.get(owner.pk, Load())
    away = owner.availability != Membership.Availability.AVAILABLE
    notify = owner if away and owner.has_paid_seat else None
    reason = _exclusion(plan, owner, load)
    if reason:
        told = f"; {name_of(owner)} is emailed about the new message" if notify else ""
        summary = f"Left unassigned: the contact owner {name_of(owner)} is {_as_state(reason)}{told}."
        return Decision(None, summary, [], [(owner, reason)], notify_owner=notify)
    told = " (away: emailed about the new message)" if notify else ""
    summary = f"Assigned to {name_of(owner)}, the contact owner{told}: {load.open} open."
    return Decision(owner, summary, [(owner, load)], [], notify_owner=notify)


def _as_state(reason: str) -> str:
    return {FREE_SEAT: "on a free seat", AWAY: "away"}.get(reason, reason)


def _join(head: str, rest: str) -> str:
    return f"{head} · {rest}" if rest else head
