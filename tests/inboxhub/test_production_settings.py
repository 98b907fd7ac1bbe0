"""Outside `make run` and the tests nothing starts without SECRET_KEY; production passes the deploy check.

Each case starts the real entry point in a subprocess with a deployment's environment: no PYTEST_VERSION
(pytest's own mark, which the processes tests start inherit), no LOCAL_RUN, no DEBUG (issue 16, point 1).
"""

import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from inboxhub.lib.secret_key import local_secret_key
from tests.channels_conn.conftest import free_port

BASE_DIR = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
NOT_SET = "SECRET_KEY is not set: InboxHub will not start without it"


def deployment_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    local = {"PYTEST_VERSION", "PYTEST_CURRENT_TEST", "LOCAL_RUN", "DEBUG", "SECRET_KEY", "DATABASE_URL"}
    env = {
        k: v for k, v in os.environ.items() if k not in local and not k.startswith(("SECURE_", "REDIS_URL"))
    }
    return env | {"DJANGO_SETTINGS_MODULE": "inboxhub.settings", "VAR_DIR": str(tmp_path)} | overrides


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=90, check=False
    )


ENTRY_POINTS = {
    "web (gunicorn, as in the Dockerfile)": lambda port, tmp: [
        str(BIN / "gunicorn"),
        "inboxhub.wsgi",
        "-b",
        port,
    ],
    "SMTP ingress": lambda port, tmp: [sys.executable, "manage.py", "runsmtp", "--port", port.split(":")[1]],
    "worker": lambda port, tmp: [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "inboxhub",
        "worker",
        "--pool",
        "solo",
    ],
    "beat": lambda port, tmp: [sys.executable, "-m", "celery", "-A", "inboxhub", "beat", "-s", f"{tmp}/beat"],
}


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_it_refuses_to_start_without_a_secret_key_and_names_it(tmp_path, entry_point):
    port = f"127.0.0.1:{free_port()}"
    result = run(ENTRY_POINTS[entry_point](port, tmp_path), deployment_env(tmp_path))

    assert result.returncode != 0
    assert NOT_SET in result.stdout + result.stderr


def test_manage_py_check_deploy_is_clean_with_production_settings(tmp_path):
    env = deployment_env(tmp_path, SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="inbox.example.com")
    result = run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


SHOW_HEADERS = """
import django
django.setup()
from django.test import Client
plain = Client().get("/login/", HTTP_HOST="inbox.example.com")
secure = Client().get("/login/", secure=True, HTTP_HOST="inbox.example.com")
print(plain.status_code, plain.get("Location"))
cookie_secure = bool(secure.cookies["csrftoken"]["secure"])
print(secure.status_code, secure.get("Strict-Transport-Security"), cookie_secure)
"""


def production_page(tmp_path, **overrides: str) -> list[str]:
    env = deployment_env(tmp_path, SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="inbox.example.com")
    result = run([sys.executable, "-c", SHOW_HEADERS], env | overrides)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_production_redirects_to_https_sends_hsts_and_secure_cookies_by_default(tmp_path):
    plain, secure = production_page(tmp_path)

    assert plain == "301 https://inbox.example.com/login/"
    assert secure == "200 max-age=31536000; includeSubDomains True"


def test_https_redirect_hsts_age_and_secure_cookies_are_each_set_by_a_variable(tmp_path):
    plain, secure = production_page(
        tmp_path, SECURE_SSL_REDIRECT="false", SECURE_HSTS_SECONDS="600", SECURE_COOKIES="false"
    )

    assert plain == "200 None"
    assert secure == "200 max-age=600; includeSubDomains False"


def test_make_run_gets_a_random_key_of_its_checkout_kept_in_var(tmp_path):
    env = deployment_env(tmp_path, LOCAL_RUN="true")
    print_key = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"
    result = run([sys.executable, "-c", print_key], env)

    key = result.stdout.strip()
    assert key == (tmp_path / "secret_key").read_text().strip()
    assert len(key) >= 50 and str(BASE_DIR) not in key
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600


def test_a_local_key_stays_the_same_for_its_checkout_and_differs_between_checkouts(tmp_path):
    first = local_secret_key(tmp_path / "one" / "secret_key")

    assert local_secret_key(tmp_path / "one" / "secret_key") == first
    assert local_secret_key(tmp_path / "two" / "secret_key") != first
