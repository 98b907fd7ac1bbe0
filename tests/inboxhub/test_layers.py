"""The mail library reads Django's settings, never its models: what import-linter cannot say alone."""

import ast
from pathlib import Path

import inboxhub.lib.mail

# Settings and their errors, and the signal that says a setting changed (the DNS resolver's cache).
ALLOWED_DJANGO = {"django.conf", "django.core.exceptions", "django.core.signals", "django.dispatch"}


def django_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name == "django" or name.startswith("django.")}


def test_the_mail_library_imports_only_djangos_settings_machinery():
    package = Path(inboxhub.lib.mail.__file__).parent
    used = {name: path.name for path in package.glob("*.py") for name in django_imports(path)}
    assert used, "the walk found no Django import at all: it is not reading the library"
    assert set(used) <= ALLOWED_DJANGO, {name: used[name] for name in set(used) - ALLOWED_DJANGO}
