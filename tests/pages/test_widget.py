"""The widget inside a LibreChat stand-in, driven by keyboard in Chromium at 1366×900 and 390×844:
where it sits, the focus trap, Escape, focus given back, accessible names, the panel's close
control, cookies never sent next to the bearer token, and the hint when the token is refused."""

import jwt
import pytest
from playwright.sync_api import expect

from tests.chromium import SIZES
from tests.pages.conftest import widget_ready

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

COMPOSER_HEIGHT = 140


def box_of(page, selector: str) -> dict:
    """The rendered box of an element inside the widget's shadow root."""
    return page.evaluate(
        """(selector) => {
          const node = document.querySelector('#solaris-widget').shadowRoot.querySelector(selector);
          const r = node.getBoundingClientRect();
          return {x: r.x, y: r.y, right: r.right, bottom: r.bottom, width: r.width, height: r.height};
        }""",
        selector,
    )


def composer_area(size: str) -> dict:
    """Where LibreChat's composer and send button sit: the bottom 140 px, from 25 % of the width to
    the right edge on desktop, the whole width on a phone."""
    width, height = SIZES[size]["width"], SIZES[size]["height"]
    left = 0 if size == "mobile" else width * 0.25
    return {"x": left, "y": height - COMPOSER_HEIGHT, "right": width, "bottom": height}


def overlaps(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["right"]
        and b["x"] < a["right"]
        and a["y"] < b["bottom"]
        and b["y"] < a["bottom"]
    )


def active(page) -> str:
    """What has the keyboard focus: inside the widget, its role/class and text; else the page's id."""
    return page.evaluate(
        """() => {
          const host = document.querySelector('#solaris-widget');
          if (document.activeElement === host) {
            const node = host.shadowRoot.activeElement;
            return 'widget:' + (node ? (node.getAttribute('aria-label') || node.textContent).trim() : '');
          }
          return 'page:' + (document.activeElement.id || document.activeElement.tagName);
        }"""
    )


def inside_dialog(page) -> bool:
    return page.evaluate(
        """() => {
          const root = document.querySelector('#solaris-widget').shadowRoot;
          return !!root.activeElement && !!root.activeElement.closest('.d');
        }"""
    )


def test_by_default_the_widget_keeps_clear_of_the_composer(page, size, ana, librechat, shot):
    page.goto(f"{librechat.url}/c/new")
    widget_ready(page)
    area = composer_area(size)
    counter = box_of(page, ".c")
    assert not overlaps(counter, area), (counter, area)
    assert counter["right"] <= SIZES[size]["width"] and counter["y"] >= 0
    page.locator("#solaris-widget .c").click()
    panel = box_of(page, ".p")
    assert not overlaps(panel, area), (panel, area)
    assert panel["x"] >= 0 and panel["right"] <= SIZES[size]["width"] and panel["y"] >= 0
    # LibreChat's send button is still what a click there reaches.
    assert (
        page.evaluate(
            """() => { const r = document.querySelector('#send').getBoundingClientRect();
          return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2).id; }"""
        )
        == "send"
    )
    shot(page, "widget-default-position")


def test_the_position_is_configurable(page, size, ana, librechat):
    librechat.attributes = 'data-position="top-left" data-offset="72"'
    page.goto(f"{librechat.url}/c/new")
    widget_ready(page)
    counter = box_of(page, ".c")
    assert counter["x"] == 16 and counter["y"] == 72
    assert page.locator("#solaris-widget").get_attribute("data-solaris-position") == "top-left"


def test_the_panel_opens_and_closes_by_keyboard_and_says_what_the_numbers_are(
    page, size, month, librechat, shot
):
    page.goto(f"{librechat.url}/c/new")
    widget_ready(page)
    counter = page.locator("#solaris-widget .c")
    assert counter.get_attribute("aria-expanded") == "false"
    assert counter.get_attribute("aria-label").startswith("IA SOLARIS: ")
    counter.focus()
    page.keyboard.press("Enter")
    panel = page.get_by_role("region", name="IA SOLARIS")
    panel.wait_for()
    assert counter.get_attribute("aria-expanded") == "true"
    assert active(page) == "widget:Fechar o painel da IA SOLARIS"  # the close control, first
    text = panel.inner_text()
    assert "dos 120.000 créditos recebidos neste ciclo" in text
    assert "Renova em 30 dias: +100.000;" in text and "vencem" in text
    shot(page, "widget-panel")
    page.keyboard.press("Escape")
    panel.wait_for(state="hidden")
    assert active(page).startswith("widget:IA SOLARIS: ")  # back on the counter
    counter.click()
    panel.get_by_role("button", name="Fechar o painel da IA SOLARIS").click()
    panel.wait_for(state="hidden")


def test_the_alert_dialog_traps_focus_closes_on_escape_and_gives_focus_back(
    page, size, ana, librechat, shot
):
    from tests.factories import ModelPriceFactory
    from tests.pages.conftest import record_call

    page.goto(f"{librechat.url}/c/new")
    widget_ready(page)
    page.locator("#prompt").focus()
    unit = ModelPriceFactory(model="gpt-unit", input_weight="1", output_weight="1")
    record_call(ana, unit, prompt=84_999, completion=1)  # 85 % of the plan
    page.evaluate("chatFetch()")  # a chat completion ends: the widget refreshes
    dialog = page.get_by_role("dialog", name="Seus créditos estão acabando")
    dialog.wait_for()
    assert active(page) == "widget:Seus créditos estão acabando"  # the title, not a buy button
    assert dialog.get_by_role(
        "button", name="Solicitar compra: Pacote 100 mil, R$ 49,90"
    ).is_visible()  # every buy button names its package
    assert "Renova em 30 dias: +100.000; 15.000 vencem." in dialog.inner_text()
    shot(page, "widget-alert-dialog")
    for _ in range(8):
        page.keyboard.press("Tab")
        assert inside_dialog(page), active(page)
    for _ in range(8):
        page.keyboard.press("Shift+Tab")
        assert inside_dialog(page), active(page)
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached")
    assert active(page) == "page:prompt"  # where the person was typing
    page.reload()
    widget_ready(page)
    page.wait_for_timeout(500)
    assert page.locator("#solaris-widget .d").count() == 0  # Escape dismissed this crossing


def test_the_blocking_dialog_is_named_and_closes_on_escape(page, size, ana, librechat):
    from tests.pages.conftest import spend_all

    spend_all(ana)
    page.goto(f"{librechat.url}/c/new")
    widget_ready(page)
    dialog = page.get_by_role("alertdialog", name="Seus créditos acabaram")
    dialog.wait_for()
    assert dialog.get_attribute("aria-modal") == "true"
    assert "ou aguarde a renovação em 30 dias (+100.000 créditos)" in dialog.inner_text()
    page.keyboard.press("Tab")
    assert inside_dialog(page)
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached")


def test_the_bearer_token_goes_without_cookies(page, size, ana, librechat):
    """Same origin (the nginx set-up): a Solaris cookie on that host never rides along."""
    librechat.cross_origin = False
    page.context.add_cookies([{"name": "probe", "value": "on-this-host", "url": librechat.url}])
    page.goto(f"{librechat.url}/c/new")
    widget_ready(page)
    bearer = [r for r in librechat.forwarded if r.get("authorization", "").startswith("Bearer ")]
    assert any(r["path"] == "/solaris/api/v1/me/balance" for r in bearer)
    assert all("cookie" not in r for r in bearer)
    page.evaluate("fetch('/solaris/healthz')")  # the page's own same-origin call does carry it
    assert "probe=on-this-host" in librechat.forwarded[-1].get("cookie", "")


def test_a_token_solaris_cannot_verify_is_reported_not_hidden_silently(page, size, ana, librechat):
    librechat.token = jwt.encode(
        {"id": "lc-ana", "email": "ana@example.com", "exp": 4_102_444_800},
        "not-the-shared-secret-0123456789abcdef",
        algorithm="HS256",
    )
    page.goto(f"{librechat.url}/c/new")
    host = page.locator("#solaris-widget")
    expect(host).to_have_attribute("data-solaris-status", "token-rejected")
    assert host.is_hidden()
    warnings = [m for m in page.console_messages if "[IA SOLARIS widget]" in m]
    assert len(warnings) == 1
    assert "LIBRECHAT_JWT_SECRET" in warnings[0] and "JWT_SECRET" in warnings[0]
