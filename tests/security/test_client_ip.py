"""kernel/client_ip.py: X-Forwarded-For is believed only from SOLARIS_TRUSTED_PROXIES."""

import pytest
from django.test import RequestFactory

from kernel.client_ip import client_ip, client_key

CLIENT = "198.51.100.7"


def request_from(remote: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_without_trusted_proxies_the_header_is_the_callers_own_text(settings):
    settings.SOLARIS_TRUSTED_PROXIES = []
    assert client_ip(request_from("203.0.113.9", CLIENT)) == "203.0.113.9"
    assert client_ip(request_from("127.0.0.1", CLIENT)) == "127.0.0.1"


@pytest.mark.parametrize(
    ("remote", "forwarded", "seen"),
    [
        ("10.0.0.2", CLIENT, CLIENT),
        # The client's own text comes first; the proxy appends the address it saw.
        ("10.0.0.2", f"1.2.3.4, {CLIENT}", CLIENT),
        # Two proxies we run: the right-most address that is not one of them.
        ("10.0.0.2", f"1.2.3.4, {CLIENT}, 10.0.0.3", CLIENT),
        # Only proxies of ours: the first of them is as far as anyone can tell.
        ("10.0.0.2", "10.0.0.3, 10.0.0.4", "10.0.0.3"),
        ("10.0.0.2", "", "10.0.0.2"),
        ("10.0.0.2", f"{CLIENT}, garbage", "10.0.0.2"),
        # Not a trusted proxy: the header is ignored.
        ("203.0.113.9", CLIENT, "203.0.113.9"),
        ("::ffff:10.0.0.2", CLIENT, CLIENT),
    ],
)
def test_through_trusted_proxies_the_client_is_the_last_untrusted_hop(
    settings, remote, forwarded, seen
):
    settings.SOLARIS_TRUSTED_PROXIES = ["10.0.0.2/31", "10.0.0.4"]
    assert client_ip(request_from(remote, forwarded)) == seen


def test_ipv6_clients_are_counted_by_their_64(settings):
    settings.SOLARIS_TRUSTED_PROXIES = []
    one = client_key(request_from("2001:db8:1:2::10"))
    other = client_key(request_from("2001:db8:1:2:ffff::1"))
    assert one == other == "2001:db8:1:2::/64"
    assert client_key(request_from("2001:db8:1:3::10")) != one
    assert client_key(request_from("198.51.100.7")) == "198.51.100.7"
