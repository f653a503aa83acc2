"""Every kind of e-mail, in both languages: subject, plain text and HTML, with absolute links."""

from datetime import UTC, datetime

import pytest
from django.template import Context, Template
from django.utils import translation

from notifications.models import Notification
from notifications.services import notification_message

pytestmark = pytest.mark.django_db

PUBLIC = "https://solaris.example.com.br"
RENEWS = datetime(2026, 12, 22, 15, 0, tzinfo=UTC).isoformat()

CONTEXTS = {
    Notification.Kind.CREDITS_ALERT: {
        "name": "Ana",
        "available": 15_000,
        "used_percent": "85.00",
        "threshold": 80,
        "renews_at": RENEWS,
    },
    Notification.Kind.CREDITS_BLOCKED: {
        "name": "Ana",
        "available": 0,
        "used_percent": "100.00",
        "threshold": 80,
        "renews_at": RENEWS,
    },
    Notification.Kind.PURCHASE_REQUESTED: {
        "purchase_id": 42,
        "user_name": "Ana Souza",
        "user_email": "ana@example.com",
        "credits": 1_250_000,
        "price_cents": 129_990,
        "package": "Pacote Grande",
        "method": "manual",
        "created_at": RENEWS,
    },
    Notification.Kind.PURCHASE_CONFIRMED: {
        "name": "Ana",
        "purchase_id": 42,
        "credits": 1_250_000,
        "price_cents": 129_990,
        "package": "Pacote Grande",
        "payment_reference": "PIX-2026-0001",
        "paid_at": RENEWS,
        "expires_at": None,
        "available": 1_260_000,
    },
    Notification.Kind.CYCLE_RENEWED: {
        "name": "Ana",
        "plan": "Básico",
        "allowance": 100_000,
        "renews_at": RENEWS,
        "available": 100_000,
    },
}

# kind → language → (subject, phrases the plain text and the HTML both carry)
EXPECTED = {
    Notification.Kind.CREDITS_ALERT: {
        "pt-br": (
            "Você já usou 85% dos seus créditos",
            ["Olá, Ana!", "15.000", "22 de dezembro de 2026", f"{PUBLIC}/conta/comprar/"],
        ),
        "en": (
            "You have used 85% of your credits",
            ["Hello Ana,", "15,000", "December 22, 2026", f"{PUBLIC}/conta/comprar/"],
        ),
    },
    Notification.Kind.CREDITS_BLOCKED: {
        "pt-br": (
            "Seus créditos acabaram: veja como comprar mais",
            ["acabaram", "compras@solaris.example", f"{PUBLIC}/conta/comprar/", "recibo"],
        ),
        "en": (
            "Your credits have run out: here is how to buy more",
            ["run out", "compras@solaris.example", f"{PUBLIC}/conta/comprar/", "receipt"],
        ),
    },
    Notification.Kind.PURCHASE_REQUESTED: {
        "pt-br": (
            "Novo pedido de compra nº 42: 1.250.000 créditos para ana@example.com",
            ["Ana Souza", "Pacote Grande", "R$ 1.299,90", f"{PUBLIC}/admin/credits/purchase/42/"],
        ),
        "en": (
            "New purchase request #42: 1,250,000 credits for ana@example.com",
            ["Ana Souza", "Pacote Grande", "R$1,299.90", f"{PUBLIC}/admin/credits/purchase/42/"],
        ),
    },
    Notification.Kind.PURCHASE_CONFIRMED: {
        "pt-br": (
            "Recibo da sua compra nº 42: 1.250.000 créditos",
            ["R$ 1.299,90", "PIX-2026-0001", "22/12/2026", "não expiram", "1.260.000"],
        ),
        "en": (
            "Receipt for your purchase #42: 1,250,000 credits",
            ["R$1,299.90", "PIX-2026-0001", "2026-12-22", "no expiry", "1,260,000"],
        ),
    },
    Notification.Kind.CYCLE_RENEWED: {
        "pt-br": (
            "Seus créditos foram renovados: 100.000 créditos do plano Básico",
            ["Básico", "100.000", "22 de dezembro de 2026"],
        ),
        "en": (
            "Your credits have been renewed: 100,000 credits of the Básico plan",
            ["Básico", "100,000", "December 22, 2026"],
        ),
    },
}


@pytest.fixture(autouse=True)
def public_settings(settings):
    settings.SOLARIS_PUBLIC_URL = PUBLIC
    settings.SOLARIS_PURCHASE_EMAIL = "compras@solaris.example"


def build(kind: str, language: str) -> Notification:
    return Notification(
        kind=kind,
        recipient="ana@example.com",
        language=language,
        context=CONTEXTS[kind],
        dedupe_key=f"{kind}:{language}",
    )


@pytest.mark.parametrize("language", ["pt-br", "en"])
@pytest.mark.parametrize("kind", list(Notification.Kind))
def test_every_kind_in_both_languages(kind, language):
    message = notification_message(notification=build(kind, language))
    subject, phrases = EXPECTED[kind][language]
    html, mimetype = message.alternatives[0]

    assert message.subject == subject
    assert message.to == ["ana@example.com"]
    assert mimetype == "text/html"
    assert html.startswith("<!DOCTYPE html>")
    assert f'lang="{"pt-BR" if language == "pt-br" else "en"}"' in html
    for phrase in phrases:
        assert phrase in message.body, phrase
        assert phrase in html, phrase
    assert "{{" not in message.body and "{%" not in html
    assert "&lt;" not in message.body  # plain text is not HTML-escaped
    assert "compras@solaris.example" in message.body


def test_statement_link_is_absolute_in_user_emails():
    for kind in (Notification.Kind.CREDITS_ALERT, Notification.Kind.PURCHASE_CONFIRMED):
        message = notification_message(notification=build(kind, "pt-br"))
        assert f"{PUBLIC}/conta/" in message.body
        assert f'href="{PUBLIC}/conta/"' in message.alternatives[0][0]


def test_user_supplied_names_are_escaped_in_html():
    notification = build(Notification.Kind.CREDITS_ALERT, "pt-br")
    notification.context = {**notification.context, "name": "<script>x</script>"}
    message = notification_message(notification=notification)
    assert "<script>x</script>" in message.body
    assert "&lt;script&gt;" in message.alternatives[0][0]
    assert "<script>" not in message.alternatives[0][0]


@pytest.mark.parametrize(
    ("language", "words", "reason"),
    [
        (
            "pt-br",
            "Restam 300 créditos na IA SOLARIS, menos do que custa uma chamada curta",
            "menos do que custa uma chamada curta",
        ),
        (
            "en",
            "Only 300 IA SOLARIS credits are left, less than a short call costs",
            "less than a short call costs",
        ),
    ],
)
def test_blocked_email_with_credits_left_says_they_cannot_pay_a_short_message(
    language, words, reason
):
    notification = build(Notification.Kind.CREDITS_BLOCKED, language)
    notification.context = {**notification.context, "available": 300}
    message = notification_message(notification=notification)
    assert words in message.body
    html = message.alternatives[0][0]
    assert reason in html and "<strong>300" in html


def test_blocked_email_without_subscription_omits_the_renewal_line():
    notification = build(Notification.Kind.CREDITS_BLOCKED, "pt-br")
    notification.context = {**notification.context, "renews_at": None}
    assert "renova" not in notification_message(notification=notification).body


@pytest.mark.parametrize(
    ("language", "template", "expected"),
    [
        (
            "pt-br",
            "{{ 0|credits }} {{ 999|credits }} {{ 1000|credits }} {{ -1234567|credits }}",
            "0 999 1.000 -1.234.567",
        ),
        (
            "en",
            "{{ 0|credits }} {{ 999|credits }} {{ 1000|credits }} {{ -1234567|credits }}",
            "0 999 1,000 -1,234,567",
        ),
        (
            "pt-br",
            "{{ 5|brl }} {{ 2990|brl }} {{ 100000000|brl }}",
            "R$ 0,05 R$ 29,90 R$ 1.000.000,00",
        ),
        ("en", "{{ 5|brl }} {{ 2990|brl }} {{ 100000000|brl }}", "R$0.05 R$29.90 R$1,000,000.00"),
        (
            "pt-br",
            '{{ "85.00"|percent }} {{ "80.58"|percent }} {{ "100.00"|percent }} {{ "0.50"|percent }}',
            "85% 80,58% 100% 0,5%",
        ),
        (
            "en",
            '{{ "85.00"|percent }} {{ "80.58"|percent }} {{ "100.00"|percent }}',
            "85% 80.58% 100%",
        ),
    ],
)
def test_number_formats(language, template, expected):
    with translation.override(language):
        rendered = Template("{% load notification_format %}" + template).render(Context())
    assert rendered == expected
