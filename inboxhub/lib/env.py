"""Read configuration from the environment; a bad value stops start-up with its name."""

import ipaddress
import os

from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip() or default


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_cpu_priority(name: str, default: str | int) -> str | int:
    """`idle`, or a nice value from 0 (the same as everything else) to 19 (the lowest)."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw == "idle":
        return raw
    if raw.isdigit() and 0 <= int(raw) <= 19:
        return int(raw)
    raise ImproperlyConfigured(f"{name} must be idle or a nice value from 0 to 19, not {raw!r}")


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.replace(";", ",").split(",") if item.strip()]


def env_networks(
    name: str, default: list[str] | None = None
) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for item in env_list(name, default):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name} holds {item!r}, which is not a network in CIDR form"
            ) from None
    return networks


def env_url(name: str, default: str) -> str:
    """An absolute http(s) URL without a trailing slash, e.g. the address links in mail point to."""
    raw = env_str(name, default).rstrip("/")
    scheme, _, rest = raw.partition("://")
    if scheme not in {"http", "https"} or not rest or any(c in raw for c in " \r\n\t"):
        raise ImproperlyConfigured(f"{name} must be an http:// or https:// address, not {raw!r}")
    return raw
