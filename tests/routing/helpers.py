"""Read form controls out of a page, so tests assert what a user gets rather than exact markup."""

from html.parser import HTMLParser


class _Controls(HTMLParser):
    def __init__(self):
        super().__init__()
        self.by_id: dict[str, dict] = {}
        self._select: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in {"input", "select", "button", "textarea"} and "id" in attrs:
            attrs["tag"] = tag
            attrs["options"] = []
            self.by_id[attrs["id"]] = attrs
        if tag == "select":
            self._select = attrs
        elif tag == "option" and self._select is not None:
            self._select["options"].append((attrs.get("value"), "selected" in attrs))

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


def controls(html: str) -> dict[str, dict]:
    """Every input, select and button that has an id: its attributes, and a select's (value, selected)."""
    parser = _Controls()
    parser.feed(html)
    return parser.by_id


def is_checked(html: str, control_id: str) -> bool:
    return "checked" in controls(html)[control_id]


def is_disabled(html: str, control_id: str) -> bool:
    return "disabled" in controls(html)[control_id]


def selected(html: str, control_id: str) -> list[str]:
    return [value for value, chosen in controls(html)[control_id]["options"] if chosen]
