"""A week of Acme's mail, as data: who wrote what, when, and what the agents did (the demo's inbox).

Acme sells handheld barcode scanners and the inventory software they run.
Every person and company here is made up; their domains are `.example`.
Times are how long before seeding a step happened. `Mail` is what arrived
from outside (built into RFC 5322 bytes and received like any mail), `Reply`
an agent's answer from the thread composer, `Act` something an agent did.
"""

from dataclasses import dataclass, field
from datetime import timedelta


def ago(days: int = 0, hours: int = 0, minutes: int = 0) -> timedelta:
    return timedelta(days=days, hours=hours, minutes=minutes)


@dataclass(frozen=True)
class Mail:
    key: str  # the local part of its Message-ID: what makes seeding it again a no-op
    at: timedelta
    sender: tuple[str, str]
    subject: str
    text: str
    html: str = ""
    cc: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    attachments: tuple[tuple[str, str, bytes], ...] = ()
    # The key of the message it answers: In-Reply-To and References follow the thread.
    answers: str = ""
    # Sent to the answered reply's Reply-To (its reply token), as a mail client does.
    to_reply_address: bool = False
    # A forward's text names when the original was written, in "{original_date}", the day before.


@dataclass(frozen=True)
class Reply:
    key: str
    at: timedelta
    body: str
    by: str = ""  # a member's email; "" for the conversation's assignee


@dataclass(frozen=True)
class Act:
    at: timedelta
    by: str
    action: str  # "assign" (to the member `value`), "stage" (the ticket, to stage `value`), "close"
    value: str = ""


@dataclass(frozen=True)
class Thread:
    inbox: str
    steps: list = field(default_factory=list)


PRIYA = ("Priya Raman", "priya.raman@brightlane.example")
TOMASZ = ("Tomasz Nowicki", "tomasz@kestrel-works.example")
WEN = ("Wen Li", "wen.li@copperfield-books.example")
OLU = ("Olu Adeyemi", "olu@greenhollow-farms.example")
AISHA = ("Aisha Khan", "aisha.khan@meridian-foods.example")
HANNA = ("Hanna Schmidt", "hanna.schmidt@oakridge-trust.example")
RAFAEL = ("Rafael Costa", "rafael@quillmark.example")
MARTA = ("Marta Oliveira", "marta.oliveira@lumen-dental.example")
BEN = ("Ben Carter", "ben@acme.example")

FIELDNOTE_HTML = """\
<!doctype html>
<html><body style="margin:0;background:#f4f1ea;font-family:Georgia,serif">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0"><tr><td align="center">
<table role="presentation" width="600" cellpadding="16" cellspacing="0" style="background:#ffffff">
<tr><td><img src="https://cdn.fieldnote.example/brand/masthead-600.png" width="568" height="90"
 alt="Fieldnote Weekly"></td></tr>
<tr><td><h1 style="font-size:24px;color:#2b2b2b">Peak season checklists that actually get used</h1>
<p style="font-size:16px;line-height:1.5;color:#444">Five warehouses told us what their night shift
checks before the trucks roll. The short version: fewer items, in the order people walk.</p>
<p><img src="https://cdn.fieldnote.example/issues/48/dock-door.jpg" width="568" height="320"
 alt="A loading dock at dusk"></p></td></tr>
<tr><td><h2 style="font-size:18px">Pick rates this month</h2>
<table cellpadding="6" cellspacing="0" border="1" style="border-collapse:collapse;width:100%">
<thead><tr><th align="left">Site type</th><th align="right">Lines per hour</th>
<th align="right">Change vs. last month</th></tr></thead>
<tbody>
<tr><td>Grocery cross-dock</td><td align="right">212</td><td align="right">+9%</td></tr>
<tr><td>Spare parts</td><td align="right">94</td><td align="right">+3%</td></tr>
<tr><td>Fashion e-commerce</td><td align="right">167</td><td align="right">+21%</td></tr>
<tr><td>Books and media</td><td align="right">141</td><td align="right">+12%</td></tr>
</tbody></table></td></tr>
<tr><td><h2 style="font-size:18px">Also this week</h2>
<ul><li><a href="https://fieldnote.example/48/labels">Why your shelf labels fade in six months</a></li>
<li><a href="https://fieldnote.example/48/returns">Returns desks: two queues or one?</a></li>
<li><a href="https://fieldnote.example/48/battery">Scanner batteries in cold stores</a></li></ul>
<img src="https://track.fieldnote.example/open/48/acme-support.gif" width="1" height="1" alt=""></td></tr>
<tr><td style="font-size:12px;color:#777">You receive Fieldnote Weekly because support@ signed up
at a trade fair. <a href="https://fieldnote.example/unsubscribe?u=acme-support">Unsubscribe</a>.</td></tr>
</table></td></tr></table>
</body></html>
"""

FIELDNOTE_TEXT = """\
Fieldnote Weekly #48 - Peak season checklists that actually get used

Five warehouses told us what their night shift checks before the trucks roll.
The short version: fewer items, in the order people walk.

Pick rates this month (lines per hour, change vs. last month)
  Grocery cross-dock   212  +9%
  Spare parts           94  +3%
  Fashion e-commerce   167  +21%
  Books and media      141  +12%

Unsubscribe: https://fieldnote.example/unsubscribe?u=acme-support
"""

# A one-page PDF: enough for any viewer to open the invoice.
INVOICE_PDF = b"""%PDF-1.4
1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj
2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj
3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]/Contents 4 0 R/Resources<</Font<</F1 5 0 R>>>>>>endobj
4 0 obj<</Length 98>>stream
BT /F1 18 Tf 60 770 Td (Acme Ltd - Invoice INV-2026-1187) Tj 0 -30 Td (Brightlane Logistics) Tj ET
endstream endobj
5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj
trailer<</Root 1 0 R>>
%%EOF
"""

# --- the long thread: a four-year history moved from Kestrel Works' old helpdesk, batch by batch ---

_CUSTOMER_NOTES = [
    "Batch {n} is in. {count} tickets, and the attachments came across this time.",
    "Batch {n} finished overnight with {count} tickets. Two of them show the wrong requester, see below.",
    "We ran batch {n} this morning: {count} tickets. The tags look right, but the old priorities are all "
    "'medium' now.",
    "Batch {n} done, {count} tickets. Is it expected that closed tickets from 2023 show as open for a "
    "few minutes before they flip?",
    "Quick one: batch {n} stopped at {count} tickets with 'rate limited'. Should we just run it again?",
    "Batch {n}: {count} tickets, no errors. Our team lead checked twenty at random and they match.",
]
_AGENT_NOTES = [
    "Thanks, Tomasz. That matches what I see on our side for batch {n}. Carry on with the next one.",
    "The requester mix-up comes from contacts that share an address with a colleague; the import keeps the "
    "first name it saw. I have corrected the two you listed.",
    "Priorities: the old system exported them in a custom field. I have mapped it for batch {next} onwards, "
    "and I will re-apply it to the batches you already ran.",
    "Yes, that is expected: closed tickets are imported open and closed right after, so their history keeps "
    "its order. It settles within a few minutes.",
    "Please run it again; the import skips what is already there, so nothing is doubled. I raised your limit "
    "for the rest of the week.",
    "Good to hear. {left} batches to go; at this pace you will be done this week.",
]


def _long_thread() -> list:
    steps = []
    start = ago(days=6, hours=8)
    end = ago(hours=3)
    count = 60
    gap = (start - end) / (count - 1)
    previous = ""
    for i in range(count):
        at = start - gap * i
        batch = i // 2 + 1
        if i == 0:
            steps.append(
                Mail(
                    key="kestrel-import-01",
                    at=at,
                    sender=TOMASZ,
                    subject="Importing four years of history from our old helpdesk",
                    text=(
                        "Hello Acme support,\n\n"
                        "we are moving our scanner fleet's support history (about 9,000 tickets since 2022) "
                        "into Acme Inventory. Your import guide says to run it in batches of 300. We will "
                        "start with batch 1 today and report back after each one, if that is all right.\n\n"
                        "Best regards,\nTomasz Nowicki\nIT, Kestrel Works"
                    ),
                )
            )
        elif i % 2 == 1:
            text = _AGENT_NOTES[(batch - 1) % len(_AGENT_NOTES)].format(
                n=batch, next=batch + 1, left=30 - batch
            )
            if i == 1:
                text = (
                    "Hello Tomasz,\n\nbatches of 300 are right. Send me a line after each one and I will "
                    "check the counts on our side."
                )
            elif i == count - 1:
                text = (
                    "That was the last one: 30 batches, 8,946 tickets, and the totals match your export. "
                    "I am closing the import on our side. Thank you for the careful reports, Tomasz."
                )
            steps.append(Reply(key=f"kestrel-import-{i + 1:02}", at=at, body=text))
        else:
            tickets = 300 if batch % 5 else 287
            text = _CUSTOMER_NOTES[(batch - 1) % len(_CUSTOMER_NOTES)].format(n=batch, count=tickets)
            steps.append(
                Mail(
                    key=f"kestrel-import-{i + 1:02}",
                    at=at,
                    sender=TOMASZ,
                    subject="Re: Importing four years of history from our old helpdesk",
                    text=f"{text}\n\nTomasz",
                    answers=previous,
                )
            )
        previous = f"kestrel-import-{i + 1:02}"
    return steps


WEEK = [
    Thread(
        "Inbox",
        [
            Mail(
                key="brightlane-order-a20931",
                at=ago(days=6, hours=5, minutes=12),
                sender=PRIYA,
                subject="Order A-20931 still not shipped",
                text=(
                    "Hi,\n\nwe ordered 40 HS-300 scanners two weeks ago (order A-20931) and the portal "
                    "still says 'awaiting dispatch'. Our Leeds depot opens "
                    "next Monday and needs them by then.\n\n"
                    "Can you tell me when they will ship?\n\nThanks,\nPriya Raman\n"
                    "Operations, Brightlane Logistics"
                ),
            ),
            Reply(
                key="brightlane-order-a20931-r1",
                at=ago(days=6, hours=4, minutes=30),
                body=(
                    "Hello Priya,\n\nthe HS-300s for A-20931 were held back for a battery recall check, "
                    "which they passed this morning. They leave our warehouse tomorrow by courier; you will "
                    "get the tracking number by email.\n\nSorry for the wait."
                ),
            ),
            Act(at=ago(days=6, hours=4, minutes=29), by="", action="stage", value="Waiting on contact"),
            Mail(
                key="brightlane-order-a20931-2",
                at=ago(days=5, hours=2, minutes=40),
                sender=PRIYA,
                subject="Re: Order A-20931 still not shipped",
                text=(
                    "Thanks! The tracking link says 'label created' since yesterday. Is that normal?\n\nPriya"
                ),
                answers="brightlane-order-a20931-r1",
                to_reply_address=True,
            ),
            Reply(
                key="brightlane-order-a20931-r2",
                at=ago(days=5, hours=1, minutes=55),
                body=(
                    "It is: the courier scans the boxes only at their hub tonight. I will keep an eye on it "
                    "and write again tomorrow if it has not moved."
                ),
            ),
            Mail(
                key="brightlane-order-a20931-3",
                at=ago(days=4, hours=6, minutes=3),
                sender=PRIYA,
                subject="Re: Order A-20931 still not shipped",
                text="They arrived this morning, all 40. Thank you for chasing it.\n\nPriya",
                answers="brightlane-order-a20931-r2",
                to_reply_address=True,
            ),
        ],
    ),
    Thread("Inbox", _long_thread()),
    Thread(
        "Inbox",
        [
            Mail(
                key="brightlane-invoice-1187",
                at=ago(days=3, hours=7, minutes=48),
                sender=PRIYA,
                subject="Invoice INV-2026-1187: wrong VAT number",
                text=(
                    "Hello,\n\nthe attached invoice shows our old VAT number (GB 123 4567 89). Our current "
                    "one is GB 987 6543 21. Could you send a corrected invoice? Our accounts team cannot "
                    "book it as it is.\n\nKind regards,\nPriya Raman"
                ),
                cc=(("Brightlane Accounts", "accounts@brightlane.example"),),
                attachments=(("INV-2026-1187.pdf", "application/pdf", INVOICE_PDF),),
            ),
            Reply(
                key="brightlane-invoice-1187-r1",
                at=ago(days=3, hours=5, minutes=20),
                body=(
                    "Hello Priya,\n\nI have asked our billing team to reissue INV-2026-1187 with GB 987 6543 "
                    "21 and updated your account, so future invoices carry the new number."
                ),
            ),
        ],
    ),
    Thread(
        "Inbox",
        [
            Mail(
                key="fieldnote-weekly-48",
                at=ago(days=2, hours=10, minutes=0),
                sender=("Fieldnote Weekly", "news@fieldnote.example"),
                subject="Fieldnote Weekly #48: peak season checklists that actually get used",
                text=FIELDNOTE_TEXT,
                html=FIELDNOTE_HTML,
                headers=(
                    ("List-Id", "Fieldnote Weekly <weekly.fieldnote.example>"),
                    ("List-Unsubscribe", "<https://fieldnote.example/unsubscribe?u=acme-support>"),
                    ("Precedence", "bulk"),
                ),
            ),
        ],
    ),
    Thread(
        "Inbox",
        [
            Mail(
                key="tidewater-ooo-0412",
                at=ago(days=1, hours=9, minutes=2),
                sender=("Jonas Berg", "jonas.berg@tidewater-supply.example"),
                subject="Automatic reply: Your scanner service plan renews on 1 January",
                text=(
                    "Thank you for your message. I am out of the office until next Monday with "
                    "limited access to email.\n\nFor urgent orders please write to "
                    "orders@tidewater-supply.example or call our office.\n\nJonas Berg\nTidewater Supply"
                ),
                headers=(
                    ("Auto-Submitted", "auto-replied"),
                    ("X-Autoreply", "yes"),
                    ("In-Reply-To", "<renewal-notice-77120@acme.example>"),
                ),
            ),
        ],
    ),
    Thread(
        "Inbox",
        [
            Mail(
                key="copperfield-password-reset",
                at=ago(days=4, hours=3, minutes=15),
                sender=WEN,
                subject="Password reset link never arrives",
                text=(
                    "Hi,\n\nI have asked for a password reset three times today and no email has come. "
                    "My login is wen.li@copperfield-books.example.\n\nWen Li\nCopperfield Books"
                ),
            ),
            Reply(
                key="copperfield-password-reset-r1",
                at=ago(days=4, hours=2, minutes=41),
                body=(
                    "Hello Wen,\n\nour log shows all three reset emails were delivered to your mail server. "
                    "Could you look in your spam or quarantine folder? They come from no-reply@acme.example."
                ),
            ),
            Mail(
                key="copperfield-password-reset-2",
                at=ago(days=4, hours=1, minutes=58),
                sender=WEN,
                subject="Re: Password reset link never arrives",
                text="Found them in quarantine. The link worked, I am back in. Thanks!\n\nWen",
                answers="copperfield-password-reset-r1",
                to_reply_address=True,
            ),
            Act(at=ago(days=4, hours=1, minutes=50), by="", action="stage", value="Closed"),
        ],
    ),
    Thread(
        "Inbox",
        [
            Mail(
                key="greenhollow-billing-address",
                at=ago(days=1, hours=4, minutes=37),
                sender=OLU,
                subject="Change the billing address for our account",
                text=(
                    "Good afternoon,\n\nwe have moved our office. From January, please send invoices to:\n\n"
                    "Greenhollow Farms Ltd\nUnit 4, Mill Lane Business Park\nHexham NE46 1AA\n\n"
                    "Thank you,\nOlu Adeyemi"
                ),
            ),
        ],
    ),
    Thread(
        "Inbox",
        [
            Mail(
                key="meridian-firmware-42",
                at=ago(hours=1, minutes=25),
                sender=AISHA,
                subject="Scanner firmware 4.2 keeps dropping Wi-Fi",
                text=(
                    "Hello,\n\nsince last night's update to firmware 4.2, six of our HS-300s in the cold "
                    "store lose Wi-Fi every ten minutes. The ones on the packing line are fine. Is there a "
                    "way to roll back?\n\nAisha Khan\nSite IT, Meridian Foods"
                ),
                cc=(("Dan Okafor", "dan.okafor@meridian-foods.example"),),
            ),
        ],
    ),
    Thread(
        "Sales",
        [
            Mail(
                key="brightlane-leeds-seats",
                at=ago(days=2, hours=2, minutes=5),
                sender=PRIYA,
                subject="Adding 15 seats for our Leeds depot",
                text=(
                    "Hi,\n\nwith Leeds opening we need 15 more Acme Inventory seats from next week. Can we "
                    "add them to our current plan, and what would that cost until our renewal in June?\n\n"
                    "Priya Raman\nBrightlane Logistics"
                ),
            ),
        ],
    ),
    Thread(
        "Sales",
        [
            Mail(
                key="ben-fwd-lumen-quote",
                at=ago(days=5, hours=6, minutes=10),
                sender=BEN,
                subject="Fwd: Quote for 12 handheld scanners",
                text=(
                    "Marta wrote to me directly; logging it here so the team sees it.\n\nBen\n\n"
                    "---------- Forwarded message ---------\n"
                    "From: Marta Oliveira <marta.oliveira@lumen-dental.example>\n"
                    "Date: {original_date}\n"
                    "Subject: Quote for 12 handheld scanners\n"
                    "To: Ben Carter <ben@acme.example>\n"
                    "Cc: Lumen Dental Purchasing <purchasing@lumen-dental.example>\n\n"
                    "Dear Ben,\n\nthank you for the visit last week. Could you send us a quote for 12 HS-300 "
                    "scanners with chargers and two years of service? We would like to order "
                    "this month.\n\nBest wishes,\nMarta Oliveira\nPractice Manager, Lumen Dental\n"
                ),
            ),
            Act(
                at=ago(days=5, hours=6, minutes=8),
                by="ben@acme.example",
                action="assign",
                value="ben@acme.example",
            ),
            Reply(
                key="ben-fwd-lumen-quote-r1",
                at=ago(days=5, hours=3, minutes=0),
                by="ben@acme.example",
                body=(
                    "Dear Marta,\n\nthank you for having me. Your quote for 12 HS-300 scanners with chargers "
                    "and two years of service comes to GBP 5,940 excluding VAT; the formal quote follows "
                    "from our system today. Delivery this month is no problem if you order within ten days."
                ),
            ),
        ],
    ),
    Thread(
        "Sales",
        [
            Mail(
                key="oakridge-nonprofit",
                at=ago(days=2, hours=6, minutes=22),
                sender=HANNA,
                subject="Do you offer a discount for charities?",
                text=(
                    "Hello,\n\nOakridge Trust is a registered charity running two food banks. Do you have "
                    "charity pricing for Acme Inventory? We would need 5 seats.\n\nHanna Schmidt"
                ),
            ),
            Reply(
                key="oakridge-nonprofit-r1",
                at=ago(days=2, hours=5, minutes=40),
                by="fay@acme.example",
                body=(
                    "Hello Hanna,\n\nthank you for asking. We do: registered charities get 40% off. One of "
                    "my colleagues in sales will send you the details today."
                ),
            ),
        ],
    ),
    Thread(
        "Sales",
        [
            Mail(
                key="quillmark-demo-call",
                at=ago(days=3, hours=1, minutes=30),
                sender=RAFAEL,
                subject="Demo call on Thursday at 15:00?",
                text=(
                    "Hi Acme team,\n\ncould we see a demo of the stock-take feature on Thursday at 15:00 UK "
                    "time? Three of us would join.\n\nRafael Costa\nQuillmark Stationers"
                ),
            ),
            Reply(
                key="quillmark-demo-call-r1",
                at=ago(days=3, hours=0, minutes=45),
                by="ben@acme.example",
                body=(
                    "Hi Rafael,\n\nThursday at 15:00 works. I will send a video link the day before. Bring "
                    "any stock-take spreadsheet you use today and we will import it live."
                ),
            ),
            Mail(
                key="quillmark-demo-call-2",
                at=ago(days=2, hours=23, minutes=50),
                sender=RAFAEL,
                subject="Re: Demo call on Thursday at 15:00?",
                text="Perfect, see you then.\n\nRafael",
                answers="quillmark-demo-call-r1",
                to_reply_address=True,
            ),
            Act(at=ago(days=2, hours=23, minutes=45), by="ben@acme.example", action="close"),
        ],
    ),
]
