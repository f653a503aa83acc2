"""Each kind of notification is written by the credit change that causes it, exactly once."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import transaction

from credits import services as credits
from credits.models import Account, Subscription
from credits.selectors import account_summary
from credits.services import notification_credits_refused
from notifications.models import Notification
from tests.factories import CreditPackageFactory, UserFactory

pytestmark = pytest.mark.django_db

ALERT = Notification.Kind.CREDITS_ALERT
BLOCKED = Notification.Kind.CREDITS_BLOCKED


def kinds(user) -> list[str]:
    return list(
        Notification.objects.filter(account_id=user.pk)
        .order_by("id")
        .values_list("kind", flat=True)
    )


def notified_state(user) -> str:
    return Account.objects.get(pk=user.pk).notified_state


def credits_state(user) -> str:
    return account_summary(user_id=user.pk).state


def test_one_alert_from_70_to_85_percent_in_one_call_and_none_more_at_90(user, spend):
    spend(user, 70_000)
    assert kinds(user) == []
    assert mail.outbox == []

    spend(user, 15_000)  # 70 % → 85 % in one call
    assert kinds(user) == [ALERT]
    assert notified_state(user) == Account.State.ALERT
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ana@example.com"]
    assert mail.outbox[0].subject == "Você já usou 85% dos seus créditos"

    spend(user, 5_000)  # 90 %
    assert kinds(user) == [ALERT]
    assert len(mail.outbox) == 1


def test_a_top_up_to_50_percent_rearms_and_the_next_crossing_alerts_again(user, spend):
    spend(user, 85_000)
    assert kinds(user) == [ALERT]

    with transaction.atomic():
        credits.credits_grant(user=user, amount=70_000, idempotency_key="top-up-1")
    # 85 000 used of 170 000 granted: 50 %, below the threshold again.
    assert notified_state(user) == Account.State.NORMAL
    assert kinds(user) == [ALERT]

    spend(user, 50_000)  # 135 000 / 170 000 = 79.41 %
    assert kinds(user) == [ALERT]
    spend(user, 2_000)  # 137 000 / 170 000 = 80.58 %
    assert kinds(user) == [ALERT, ALERT]
    assert [m.subject for m in mail.outbox] == [
        "Você já usou 85% dos seus créditos",
        "Você já usou 80,58% dos seus créditos",
    ]


def test_a_settle_that_leaves_nothing_sends_the_blocked_email_once(user, spend):
    spend(user, 70_000)
    spend(user, 30_000)  # straight from 70 % to nothing: blocked, no separate alert
    assert kinds(user) == [BLOCKED]
    assert notified_state(user) == Account.State.BLOCKED
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == "Seus créditos acabaram: veja como comprar mais"
    assert "http://127.0.0.1:8000/conta/comprar/" in mail.outbox[0].body

    notification_credits_refused(user_id=user.pk)  # later refusals: already told
    assert kinds(user) == [BLOCKED]


def test_alert_then_blocked_are_two_crossings(user, spend):
    spend(user, 90_000)
    spend(user, 10_000)
    assert kinds(user) == [ALERT, BLOCKED]
    assert len(mail.outbox) == 2


def test_credits_too_few_for_a_short_call_send_the_blocked_email_once(
    user, spend, eco, django_capture_on_commit_callbacks
):
    """Blocked is not zero: 100 credits cannot pay the reference prompt (200) and the smallest
    answer (256) on the cheapest model (1 credit a token), so the settlement that leaves them
    sends the blocked e-mail, and the refusals after it send nothing more."""
    spend(user, 90_000)
    assert kinds(user) == [ALERT]
    spend(user, 9_900)  # 100 credits left
    assert kinds(user) == [ALERT, BLOCKED]
    blocked = Notification.objects.get(kind=BLOCKED)
    assert blocked.context["available"] == 100
    assert [m.subject for m in mail.outbox][-1] == "Seus créditos acabaram: veja como comprar mais"
    with pytest.raises(credits.InsufficientCredits) as refused:
        credits.hold_create(
            user=user, request_id="refused-1", price=eco, prompt_tokens=50, max_tokens=1000
        )
    assert refused.value.blocked
    with django_capture_on_commit_callbacks(execute=True):
        assert notification_credits_refused(user_id=user.pk) is None
    assert kinds(user) == [ALERT, BLOCKED]
    assert len(mail.outbox) == 2


def test_a_price_edit_across_the_line_notifies_at_the_next_credit_event(
    user, spend, eco, django_capture_on_commit_callbacks
):
    """Raising the cheapest price moves the blocked line over the account: nothing is written at
    the edit (no sweep over all accounts), the state every surface shows is blocked at once, and
    the e-mail goes once, at the account's next credit event (here a refused call)."""
    spend(user, 99_000)  # 1 000 left: 456 pays a short call
    assert kinds(user) == [ALERT]
    credits.model_price_set(model="eco", input_weight=Decimal(3), output_weight=Decimal(3))
    assert kinds(user) == [ALERT]
    assert credits_state(user) == Account.State.BLOCKED  # a short call now costs 1 368
    eco.refresh_from_db()
    with pytest.raises(credits.InsufficientCredits):
        credits.hold_create(
            user=user, request_id="after-edit", price=eco, prompt_tokens=200, max_tokens=1000
        )
    with django_capture_on_commit_callbacks(execute=True):
        first = notification_credits_refused(user_id=user.pk)
        again = notification_credits_refused(user_id=user.pk)
    assert first is not None and first.kind == BLOCKED and again is None
    assert kinds(user) == [ALERT, BLOCKED]
    # Lowering the price back does not re-arm: only credits added do.
    credits.model_price_set(model="eco", input_weight=Decimal(1), output_weight=Decimal(1))
    assert credits_state(user) == Account.State.ALERT
    assert notified_state(user) == Account.State.BLOCKED


def test_an_oversized_request_refused_with_most_credits_left_is_not_blocked(user, spend, eco):
    spend(user, 50_000)
    with pytest.raises(credits.InsufficientCredits):
        credits.hold_create(
            user=user, request_id="huge", price=eco, prompt_tokens=60_000, max_tokens=1000
        )
    assert notification_credits_refused(user_id=user.pk) is None
    assert notified_state(user) == Account.State.NORMAL
    assert kinds(user) == []


def test_a_purchase_after_blocked_rearms_both_alert_and_blocked(user, spend):
    spend(user, 100_000)
    assert kinds(user) == [BLOCKED]
    package = CreditPackageFactory(credits=50_000, price_cents=2_990)
    with transaction.atomic():
        purchase = credits.purchase_request(user=user, package=package, idempotency_key="buy-1")
        credits.purchase_confirm(purchase=purchase, confirmed_by=None)
    # 100 000 used of 150 000: 66.66 %, normal again.
    assert notified_state(user) == Account.State.NORMAL
    spend(user, 20_000)
    spend(user, 30_000)
    assert kinds(user) == [
        BLOCKED,
        Notification.Kind.PURCHASE_REQUESTED,
        Notification.Kind.PURCHASE_CONFIRMED,
        ALERT,
        BLOCKED,
    ]


def test_a_small_top_up_while_blocked_rearms_only_blocked(user, spend):
    spend(user, 100_000)
    with transaction.atomic():
        credits.credits_grant(user=user, amount=1_000, idempotency_key="small")
    assert notified_state(user) == Account.State.ALERT  # still above 80 %: already alerted
    spend(user, 1_000)
    assert kinds(user) == [BLOCKED, BLOCKED]


def test_purchase_request_emails_the_purchase_mailbox_once(
    user, settings, django_capture_on_commit_callbacks
):
    settings.SOLARIS_PURCHASE_EMAIL = "financeiro@solaris.example"
    package = CreditPackageFactory(name="Pacote Médio", credits=50_000, price_cents=2_990)
    with django_capture_on_commit_callbacks(execute=True):
        purchase = credits.purchase_request(user=user, package=package, idempotency_key="p-1")
    with django_capture_on_commit_callbacks(execute=True):
        again = credits.purchase_request(user=user, package=package, idempotency_key="p-1")

    assert again.pk == purchase.pk
    notification = Notification.objects.get(kind=Notification.Kind.PURCHASE_REQUESTED)
    assert notification.recipient == "financeiro@solaris.example"
    assert notification.language == "pt-br"
    assert notification.dedupe_key == f"purchase_requested:{purchase.pk}"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["financeiro@solaris.example"]
    assert message.subject == (
        f"Novo pedido de compra nº {purchase.pk}: 50.000 créditos para ana@example.com"
    )
    assert f"http://127.0.0.1:8000/admin/credits/purchase/{purchase.pk}/change/" in message.body
    assert "R$ 29,90" in message.body


def test_purchase_confirmation_sends_one_receipt(user, django_capture_on_commit_callbacks):
    package = CreditPackageFactory(credits=50_000, price_cents=2_990, validity_days=30)
    purchase = credits.purchase_request(user=user, package=package, idempotency_key="p-2")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        credits.purchase_confirm(purchase=purchase, confirmed_by=None, payment_reference="PIX-77")
    with django_capture_on_commit_callbacks(execute=True):
        credits.purchase_confirm(purchase=purchase, confirmed_by=None)  # twice: credited once

    receipt = Notification.objects.get(kind=Notification.Kind.PURCHASE_CONFIRMED)
    assert receipt.recipient == user.email
    assert receipt.context["available"] == 150_000
    assert receipt.context["payment_reference"] == "PIX-77"
    assert receipt.context["expires_at"] is not None
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == f"Recibo da sua compra nº {purchase.pk}: 50.000 créditos"
    assert "PIX-77" in mail.outbox[0].body


def test_cycle_renewal_notifies_and_rearms(user, spend, django_capture_on_commit_callbacks):
    spend(user, 85_000)
    assert notified_state(user) == Account.State.ALERT
    subscription = Subscription.objects.get(user=user)
    later = subscription.cycle_end + timedelta(minutes=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert credits.cycles_renew(now=later) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert credits.cycles_renew(now=later) == 0  # nothing due any more

    assert notified_state(user) == Account.State.NORMAL
    renewed = Notification.objects.get(kind=Notification.Kind.CYCLE_RENEWED)
    assert renewed.context["allowance"] == 100_000
    assert renewed.context["plan"] == subscription.plan.name
    assert mail.outbox[-1].subject == (
        f"Seus créditos foram renovados: 100.000 créditos do plano {subscription.plan.name}"
    )
    assert len([m for m in mail.outbox if "renovados" in m.subject]) == 1


def test_a_plan_without_allowance_renews_silently(django_capture_on_commit_callbacks):
    from tests.factories import PlanFactory

    PlanFactory(slug="gratis", monthly_allowance=0)
    user = UserFactory(plan_slug="gratis")
    subscription = Subscription.objects.get(user=user)
    with django_capture_on_commit_callbacks(execute=True):
        assert credits.cycles_renew(now=subscription.cycle_end + timedelta(seconds=1)) == 1
    assert kinds(user) == []


def test_settling_again_is_idempotent_and_notifies_once(user, eco, spend):
    spend(user, 84_000)
    assert kinds(user) == [ALERT]
    credits.hold_settle(request_id=f"req-{user.pk}-1", prompt_tokens=0, completion_tokens=84_000)
    assert kinds(user) == [ALERT]


def test_a_rolled_back_change_leaves_no_notification(user, spend, eco):
    spend(user, 79_000)
    credits.hold_create(
        user=user, request_id="doomed", price=eco, prompt_tokens=0, max_tokens=5_000
    )
    with pytest.raises(RuntimeError), transaction.atomic():
        credits.hold_settle(request_id="doomed", prompt_tokens=0, completion_tokens=5_000)
        assert kinds(user) == [ALERT]
        raise RuntimeError("the caller failed after settling")
    assert kinds(user) == []
    assert notified_state(user) == Account.State.NORMAL
    assert mail.outbox == []


def test_english_user_gets_english_alert(plan, spend):
    bob = UserFactory(email="bob@example.com", name="Bob Smith", language="en")
    spend(bob, 81_000)
    assert mail.outbox[0].subject == "You have used 81% of your credits"
    assert "Hello Bob," in mail.outbox[0].body


def test_alert_threshold_is_configurable(user, spend, settings):
    settings.SOLARIS_ALERT_THRESHOLD = 50
    spend(user, 49_000)
    assert kinds(user) == []
    spend(user, 1_000)
    assert kinds(user) == [ALERT]
    assert Notification.objects.get().context["threshold"] == 50
