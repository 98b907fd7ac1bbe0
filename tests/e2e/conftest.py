"""Browser tests: Playwright (sync API) driving the system Chromium against pytest-django's live server.

Fixtures: `browser` (one Chromium per session), `context` and `page` (fresh per test; `page` fails
the test on console errors, page errors and CSP violations), `demo` (the seeded demo accounts).
Helpers: `login`, `assert_accessible`, `assert_fits_mobile`, `screenshot`.
"""

import contextlib
import io
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
MOBILE = {"width": 390, "height": 844}
DEMO_PASSWORD = "inboxhub-demo"  # published demo credentials (inboxhub/management/commands/demo.py)

# Reports CSP violations to the test through a binding. Init scripts are evaluated through the
# DevTools protocol, so the page's own CSP (no inline script) does not block them.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__reportCspViolation({
    directive: event.violatedDirective, blocked: event.blockedURI,
    source: event.sourceFile, line: event.lineNumber, sample: event.sample,
  });
});
"""


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    """Group every browser test on one xdist worker, and skip them all when Chromium is missing."""
    here = Path(__file__).parent
    no_chromium = pytest.mark.skip(reason=f"{CHROMIUM} is missing; `make browser-tools` installs it")
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.xdist_group("browser"))
            item.add_marker(pytest.mark.e2e)
            if not CHROMIUM.exists():
                item.add_marker(no_chromium)


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: browser test driving Chromium against the live server")


@dataclass
class BrowserProblems:
    """What went wrong in the browser during one test."""

    console: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp: list[dict] = field(default_factory=list)
    # Documents answered 4xx on purpose (a form re-rendered with its errors answers 400);
    # Chromium logs "Failed to load resource" for them, which is not a page problem.
    error_documents: set[str] = field(default_factory=set)
    console_urls: list[str] = field(default_factory=list)

    def report(self) -> str:
        lines = []
        for text, url in zip(self.console, self.console_urls, strict=True):
            if text.startswith("Failed to load resource") and url in self.error_documents:
                continue
            lines.append(f"console error: {text} ({url})")
        lines += [f"page error: {e}" for e in self.page_errors]
        lines += [f"CSP violation: {json.dumps(v, sort_keys=True)}" for v in self.csp]
        return "\n".join(lines)


@pytest.fixture(scope="package")
def browser():
    """One Chromium for all browser tests (they run together on one xdist worker)."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in the test thread, and Django's ORM
    # refuses to run beside one unless told it is fine. Only while the browser is up, so the
    # other tests keep Django's check (the SMTP ingress tests rely on it).
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def problems() -> BrowserProblems:
    return BrowserProblems()


@pytest.fixture
def context(browser, live_server, problems):
    # Reduced motion: menus and dialogs appear at once, so checks and screenshots never catch a fade.
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP, reduced_motion="reduce")
    context.set_default_timeout(5_000)
    context.expose_binding("__reportCspViolation", lambda source, violation: problems.csp.append(violation))
    context.add_init_script(script=CSP_LISTENER)
    yield context
    # Pages poll for live updates: leave them first, so no request of theirs meets the database's
    # cleanup after the test (a poll mid-TRUNCATE can deadlock it).
    for open_page in context.pages:
        with contextlib.suppress(Exception):  # a page that cannot navigate is closed below anyway
            open_page.goto("about:blank")
    context.close()


@pytest.fixture
def page(context, problems):
    page = context.new_page()

    def on_console(message):
        if message.type == "error":
            problems.console.append(message.text)
            problems.console_urls.append(message.location.get("url", ""))

    def on_response(response):
        if response.request.resource_type == "document" and 400 <= response.status < 500:
            problems.error_documents.add(response.url)

    page.on("console", on_console)
    page.on("response", on_response)
    page.on("pageerror", lambda error: problems.page_errors.append(str(error)))
    return page


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Fail the test itself (not its teardown) when the browser reported problems."""
    result = yield
    problems = item.funcargs.get("problems") if hasattr(item, "funcargs") else None
    if problems is not None and (report := problems.report()):
        pytest.fail(f"The browser reported problems:\n{report}", pytrace=False)
    return result


@pytest.fixture
def demo(transactional_db):
    """The demo accounts acme and globex (all passwords `inboxhub-demo`), without the week of mail."""
    call_command("demo", "--without-mail", stdout=io.StringIO())


def login(page, email: str, password: str = DEMO_PASSWORD) -> None:
    """Log in through the form and wait for the page after it."""
    page.goto("/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    assert "/login/" not in page.url, f"still on the login page after logging in as {email}"


# Rules axe leaves off by default that every page must pass too. label-content-name-mismatch
# (WCAG 2.5.3, "experimental" in axe): a control's accessible name contains its visible text, so
# a speech user can say what they see.
EXTRA_AXE_RULES = {"label-content-name-mismatch": {"enabled": True}}


def assert_accessible(page, *, impacts=("serious", "critical")) -> None:
    """Run axe-core on the current page; fail listing every serious or critical violation."""
    if not AXE_JS.exists():
        pytest.fail(f"{AXE_JS} is missing; `make browser-tools` installs it (npm ci)", pytrace=False)
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol: the page's CSP does not apply.
        page.evaluate(AXE_JS.read_text())
    violations = page.evaluate(
        """async (rules) => {
          const result = await window.axe.run(document, {resultTypes: ["violations"], rules});
          return result.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map((n) => ({target: n.target.join(" "), summary: n.failureSummary})),
          }));
        }""",
        EXTRA_AXE_RULES,
    )
    bad = [v for v in violations if v["impact"] in impacts]
    if bad:
        lines = [f"axe: {len(bad)} violation(s) on {page.url}"]
        for v in bad:
            lines.append(f"- [{v['impact']}] {v['id']}: {v['help']}")
            for node in v["nodes"][:5]:
                summary = " ".join(node["summary"].split())
                lines.append(f"    {node['target']}: {summary}")
        pytest.fail("\n".join(lines), pytrace=False)


FIT_CHECK = (Path(__file__).parent / "fit_check.js").read_text()


def assert_fits_mobile(page) -> None:
    """At 390x844: no horizontal page scroll, and no text cut off outside `.table-wrap`."""
    page.set_viewport_size(MOBILE)
    problems = page.evaluate(FIT_CHECK)
    if problems:
        pytest.fail(f"{page.url} does not fit 390px:\n" + "\n".join(problems), pytrace=False)


def screenshot(page, name: str, *, full_page: bool = True) -> Path:
    """Save a PNG to test-artifacts/screenshots/<name>.png (git-ignored) and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^a-z0-9_-]+', '-', name.lower())}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


@pytest.fixture(scope="session", autouse=True)
def _fresh_screenshots():
    # Runs once, on the one worker that gets the browser group, so old pictures never linger.
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
