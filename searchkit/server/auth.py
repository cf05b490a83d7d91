"""Who may talk to the service: loopback by default, a bearer token beyond it (guards.py checks it)."""

from __future__ import annotations

import ipaddress

from searchkit.errors import UsageError

__all__ = ["check_bind", "is_loopback"]


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token."""
    if token is not None and not token.strip():
        raise UsageError("--token is empty; pass a long random string (e.g. from: openssl rand -hex 32)")
    if not is_loopback(host) and token is None:
        raise UsageError(
            f"--host {host} is reachable from other machines; pass --token T (or set SEARCHKIT_TOKEN) "
            "so that clients must send 'Authorization: Bearer T', or bind 127.0.0.1"
        )
