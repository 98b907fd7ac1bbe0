"""The address a web request comes from, as the lockout and the sign-up allowance count it (issue 16)."""

from django.conf import settings


def client_ip(request) -> str | None:
    """REMOTE_ADDR; behind WEB_PROXY_COUNT reverse proxies, the address the outermost one saw.

    Each proxy appends the address it got the request from to X-Forwarded-For, so only the
    last WEB_PROXY_COUNT entries are theirs; whatever stands left of them the client wrote.
    Without this, every request behind a proxy has the proxy's address, and one person's
    wrong passwords would lock everyone out.
    """
    remote = request.META.get("REMOTE_ADDR")
    count = settings.WEB_PROXY_COUNT
    if not count:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    return hops[-count] if len(hops) >= count else remote
