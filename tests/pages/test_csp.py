"""The pages and the widget under a strict Content-Security-Policy (no inline script or style,
images from the site and data: URIs for the PIX QR code): everything works and the browser
reports no violation."""

import re

import pytest

from tests.pages.conftest import sign_in, spend_all, widget_ready

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def with_policy(page, origin: str, policy: str) -> None:
    """Every HTML page from this origin arrives with the policy, as a CSP header would send it."""

    def add(route):
        response = route.fetch(max_redirects=0)
        headers = dict(response.headers)
        if headers.get("content-type", "").startswith("text/html"):
            headers["content-security-policy"] = policy
        route.fulfill(response=response, headers=headers)

    page.route(re.compile(re.escape(origin) + ".*"), add)


def violations(page) -> list[str]:
    return [m for m in page.console_messages if "Content Security Policy" in m]


def test_the_pix_path_runs_under_a_strict_policy(page, size, site, ana, mercadopago):
    with_policy(page, site.url, POLICY)
    spend_all(ana)
    sign_in(page, site)
    modal = page.locator("#blocked-modal")
    modal.wait_for(state="visible")
    modal.get_by_role("button", name=re.compile("^Pagar com PIX")).click()
    qr = modal.get_by_role("img", name="QR code PIX para pagar R$ 49,90")
    qr.wait_for()
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.locator(".bar .fill").evaluate("r => getComputedStyle(r).fill") != "rgb(0, 0, 0)"
    assert violations(page) == []


def test_the_widget_runs_under_librechats_strict_policy(page, size, ana, librechat):
    librechat.cross_origin = False  # the widget served from LibreChat's own host, as with nginx
    with_policy(
        page,
        librechat.url,
        POLICY.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'"),
    )
    spend_all(ana)
    page.goto(f"{librechat.url}/c/new")
    widget_ready(page)
    dialog = page.locator("#solaris-widget [role=alertdialog]")
    dialog.wait_for()
    # The widget's own styles applied (a CSP-safe constructed stylesheet, no <style> element).
    assert dialog.evaluate("d => getComputedStyle(d).borderRadius") == "12px"
    assert violations(page) == []
