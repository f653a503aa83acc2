"""Staff guard rails (docs/admin.md), through admin and through the admin API: nobody grants,
confirms or refunds for their own account; only superusers set privileges or touch other staff
accounts; grants above SOLARIS_GRANT_APPROVAL_ABOVE wait for a second staff member."""

import threading

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from accounts.models import ApiKey, User
from accounts.services import api_key_create
from backoffice.models import GrantRequest
from backoffice.roles import FINANCE
from backoffice.services import grant_request_approve
from credits.models import Grant, LedgerEntry, Purchase
from credits.selectors import account_summary, ledger_violations
from credits.services import purchase_confirm, purchase_request, user_create
from tests.backoffice.conftest import PASSWORD, logged_in, staff
from tests.factories import CreditPackageFactory, UserFactory

BASE = "/api/v1/admin/"


@pytest.fixture
def customer(plan):
    return UserFactory(email="cliente@example.com", name="Carla")


@pytest.fixture
def finance_customer(plan):
    """A Financeiro member who is also a customer (has a credit account on the plan)."""
    user = user_create(email="fin@solaris.test", name="Fin", password=PASSWORD)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    staff_group(user, FINANCE)
    return user


def staff_group(user, group):
    from django.contrib.auth.models import Group

    from backoffice.roles import roles_sync

    roles_sync()
    user.groups.add(Group.objects.get(name=group))


def api_call(client, key, method, path, body=None):
    kwargs = {"content_type": "application/json", "data": body} if body is not None else {}
    return getattr(client, method)(BASE + path, HTTP_AUTHORIZATION=f"Bearer {key}", **kwargs)


def error_of(response, status, code, param=None):
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    if param is not None:
        assert error["param"] == param
    return error


def manual_grants(user) -> list[int]:
    return list(
        Grant.objects.filter(account_id=user.pk, source__in=["manual", "promo"]).values_list(
            "amount", flat=True
        )
    )


# --- nobody acts on their own account ---


def test_api_key_of_finance_cannot_grant_to_itself(client, finance_customer):
    key = api_key_create(user=finance_customer)[1]
    before = account_summary(user_id=finance_customer.pk).available
    body = {"user": finance_customer.email, "amount": 1000, "reason": "eu", "idempotency_key": "x"}
    error = error_of(api_call(client, key, "post", "grants", body), 403, "own_account", "user")
    assert error["type"] == "permission_error"
    assert manual_grants(finance_customer) == []
    assert account_summary(user_id=finance_customer.pk).available == before


def test_api_key_of_finance_cannot_buy_or_confirm_for_itself(client, finance_customer):
    key = api_key_create(user=finance_customer)[1]
    huge = {"user": finance_customer.pk, "credits": 10**12, "price_cents": 0}
    response = api_call(client, key, "post", "purchases", {**huge, "idempotency_key": "p"})
    error_of(response, 403, "own_account", "user")
    assert not Purchase.objects.exists()
    # A purchase the customer side made (the portal) is still not theirs to confirm.
    own = purchase_request(user=finance_customer, idempotency_key="own", credits=5, price_cents=1)
    response = api_call(client, key, "post", f"purchases/{own.pk}/confirm", {})
    error_of(response, 403, "own_account")
    own.refresh_from_db()
    assert own.status == Purchase.Status.REQUESTED and not Grant.objects.filter(purchase=own)


def test_api_refund_of_own_purchase_is_refused(client, finance_customer, admin_user):
    own = purchase_request(user=finance_customer, idempotency_key="own", credits=5, price_cents=1)
    purchase_confirm(purchase=own, confirmed_by=admin_user)
    key = api_key_create(user=finance_customer)[1]
    response = api_call(client, key, "post", f"purchases/{own.pk}/refund", {"reason": "eu"})
    error_of(response, 403, "own_account")
    own.refresh_from_db()
    assert own.status == Purchase.Status.CREDITED
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REFUND).exists()


def test_admin_form_refuses_own_grant(client, finance_customer):
    logged_in(client, finance_customer)
    url = reverse("admin:accounts_user_add_credits", args=[finance_customer.pk])
    data = {"amount": "1000", "reason": "eu", "idempotency_key": "k" * 32}
    page = client.post(url, data, HTTP_ACCEPT_LANGUAGE="pt-br")
    assert page.status_code == 200
    assert "Você não pode adicionar créditos à sua própria conta" in page.text
    assert manual_grants(finance_customer) == []


def test_admin_refuses_own_confirm_and_refund(client, finance_customer, admin_user):
    logged_in(client, finance_customer)
    own = purchase_request(user=finance_customer, idempotency_key="own", credits=5, price_cents=1)
    page = client.get(reverse("admin:credits_purchase_change", args=[own.pk]))
    assert "confirm-purchase" not in page.text  # the button is not even offered
    confirm = reverse("admin:credits_purchase_confirm", args=[own.pk])
    assert "own account" in client.post(confirm, {}, HTTP_ACCEPT_LANGUAGE="en").text
    changelist = reverse("admin:credits_purchase_changelist")
    client.post(changelist, {"action": "confirm_selected", "_selected_action": [own.pk]})
    own.refresh_from_db()
    assert own.status == Purchase.Status.REQUESTED
    purchase_confirm(purchase=own, confirmed_by=admin_user)
    refund = reverse("admin:credits_purchase_refund", args=[own.pk])
    client.post(refund, {"reason": "eu"})
    own.refresh_from_db()
    assert own.status == Purchase.Status.CREDITED


def test_others_are_served_as_before(client, finance_customer, customer):
    key = api_key_create(user=finance_customer)[1]
    body = {"user": customer.pk, "amount": 1000, "reason": "PIX", "idempotency_key": "ok"}
    assert api_call(client, key, "post", "grants", body).status_code == 201
    assert manual_grants(customer) == [1000]


# --- custom purchases: bounded, and never free ---


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"credits": 10**12}, "credits"),
        ({"credits": 10**9 + 1}, "credits"),
        ({"price_cents": 0}, "price_cents"),
        ({"price_cents": 10**8 + 1}, "price_cents"),
        ({"price_cents": 2**31}, "price_cents"),
    ],
)
def test_custom_purchase_bounds(api_client_admin, customer, change, param):
    body = {"user": customer.pk, "credits": 1000, "price_cents": 500, "idempotency_key": "b"}
    response = api_client_admin("post", "purchases", {**body, **change})
    error_of(response, 400, "invalid_request_error", param)
    assert not Purchase.objects.exists()


def test_free_package_is_the_explicit_promo(api_client_admin, customer):
    package = CreditPackageFactory(credits=1000, price_cents=0, name="Boas-vindas")
    body = {"user": customer.pk, "package": package.pk, "idempotency_key": "promo"}
    assert api_client_admin("post", "purchases", body).status_code == 201


@pytest.fixture
def api_client_admin(client, staff_key):
    return lambda method, path, body=None: api_call(client, staff_key, method, path, body)


# --- privileges: only superusers ---


@pytest.fixture
def manager(db):
    """A staff member who may change users (accounts.change_user) but is no superuser."""
    from django.contrib.auth.models import Permission

    user = staff("gestor@solaris.test")
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_user", "change_user", "add_apikey", "view_apikey"]
        )
    )
    return User.objects.get(pk=user.pk)


def change_form_data(user, **changes):
    data = {
        "email": user.email,
        "name": user.name,
        "language": user.language,
        "librechat_id": "",
        "is_active": "on",
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
    }
    data.update(changes)
    return data


def test_non_superuser_cannot_make_anyone_superuser(client, manager, customer):
    from django.contrib.auth.models import Group

    finance = Group.objects.create(name="Qualquer")
    logged_in(client, manager)
    for target in (customer, manager):
        url = reverse("admin:accounts_user_change", args=[target.pk])
        page = client.get(url)
        assert page.status_code == 200 and 'name="is_superuser"' not in page.text
        data = change_form_data(target, is_superuser="on", is_staff="on", groups=[finance.pk])
        response = client.post(url, data)
        assert response.status_code == 302, response.context["adminform"].form.errors
    customer.refresh_from_db()
    manager.refresh_from_db()
    assert not customer.is_superuser and not customer.is_staff and not customer.groups.exists()
    assert not manager.is_superuser and not manager.groups.exists()


def test_superuser_still_sets_privileges(admin_client, customer):
    url = reverse("admin:accounts_user_change", args=[customer.pk])
    response = admin_client.post(url, change_form_data(customer, is_staff="on"))
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.is_staff


def test_non_superuser_cannot_take_over_another_staff_account(client, manager, admin_user):
    colleague = staff("colega@solaris.test", group=FINANCE)
    logged_in(client, manager)
    for target in (admin_user, colleague):
        change = reverse("admin:accounts_user_change", args=[target.pk])
        assert client.post(change, change_form_data(target, email="eu@x.com")).status_code == 403
        password = reverse("admin:auth_user_password_change", args=[target.pk])
        assert client.post(password, {"password1": "x" * 12, "password2": "x" * 12}).status_code
        key_page = reverse("admin:accounts_user_api_key", args=[target.pk])
        assert client.post(key_page, {"name": "roubo"}).status_code == 403
        suspend = reverse("admin:accounts_user_suspend", args=[target.pk])
        assert client.post(suspend, {"reason": "x"}).status_code == 403
    for target in (admin_user, colleague):
        target.refresh_from_db()
        assert target.check_password(PASSWORD) and not target.is_suspended
        assert "@solaris.test" in target.email
    assert not ApiKey.objects.exists()
    # The same through the API with the manager's own key.
    key = api_key_create(user=manager)[1]
    response = api_call(client, key, "post", "api-keys", {"user": admin_user.email})
    error_of(response, 403, "permission_denied", "user")
    response = api_call(client, key, "post", f"users/{colleague.pk}/suspend", {"reason": "x"})
    error_of(response, 403, "permission_denied", "user")
    assert ApiKey.objects.filter(user=admin_user).count() == 0
    assert not User.objects.get(pk=colleague.pk).is_suspended


def test_bulk_suspend_skips_staff_for_non_superusers(client, manager, customer, admin_user):
    logged_in(client, manager)
    changelist = reverse("admin:accounts_user_changelist")
    client.post(
        changelist,
        {"action": "suspend_selected", "_selected_action": [customer.pk, admin_user.pk]},
    )
    assert User.objects.get(pk=customer.pk).is_suspended
    assert not User.objects.get(pk=admin_user.pk).is_suspended


# --- grants above the threshold wait for a second staff member ---


@pytest.fixture
def approval(settings):
    settings.SOLARIS_GRANT_APPROVAL_ABOVE = 1000
    return settings


@pytest.fixture
def second_finance(db):
    return staff("financeiro2@solaris.test", group=FINANCE)


def test_threshold_unset_grants_at_once(api_client_admin, customer):
    body = {"user": customer.pk, "amount": 10**9, "reason": "x", "idempotency_key": "big"}
    assert api_client_admin("post", "grants", body).status_code == 201
    assert manual_grants(customer) == [10**9]


def test_api_grant_above_threshold_waits_for_a_second_person(
    client, approval, finance_user, second_finance, customer
):
    first = api_key_create(user=finance_user)[1]
    second = api_key_create(user=second_finance)[1]
    before = account_summary(user_id=customer.pk).available
    entries = LedgerEntry.objects.count()
    body = {"user": customer.email, "amount": 5000, "reason": "PIX 9", "idempotency_key": "a1"}
    pending = api_call(client, first, "post", "grants", body)
    assert pending.status_code == 202, pending.content
    assert pending.json()["status"] == "pending" and pending.json()["grant"] is None
    # Nothing reached the ledger; the same request again is the same pending request.
    assert LedgerEntry.objects.count() == entries
    assert account_summary(user_id=customer.pk).available == before
    again = api_call(client, first, "post", "grants", body)
    assert again.status_code == 202 and again.json()["id"] == pending.json()["id"]
    changed = api_call(client, first, "post", "grants", {**body, "amount": 6000})
    error_of(changed, 409, "idempotency_conflict")
    # At or below the threshold: granted at once.
    small = {**body, "amount": 1000, "idempotency_key": "a2"}
    assert api_call(client, first, "post", "grants", small).status_code == 201

    request_id = pending.json()["id"]
    listed = api_call(client, second, "get", "grant-requests?status=pending").json()
    assert [row["id"] for row in listed["results"]] == [request_id]
    own = api_call(client, first, "post", f"grant-requests/{request_id}/approve")
    error_of(own, 403, "second_approver_required")
    assert manual_grants(customer) == [1000]

    approved = api_call(client, second, "post", f"grant-requests/{request_id}/approve")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    twice = api_call(client, second, "post", f"grant-requests/{request_id}/approve")
    assert twice.status_code == 200 and twice.json()["grant"] == approved.json()["grant"]
    assert sorted(manual_grants(customer)) == [1000, 5000]
    assert account_summary(user_id=customer.pk).available == before + 6000
    grant = Grant.objects.get(pk=approved.json()["grant"])
    assert (grant.created_by, grant.reason) == (finance_user, "PIX 9")
    decided = GrantRequest.objects.get(pk=request_id)
    assert decided.decided_by == second_finance and decided.requested_by == finance_user
    rejected = api_call(
        client, second, "post", f"grant-requests/{request_id}/reject", {"note": "x"}
    )
    error_of(rejected, 409, "grant_request_closed")
    assert ledger_violations() == []


def test_api_reject_grants_nothing(client, approval, finance_user, second_finance, customer):
    first = api_key_create(user=finance_user)[1]
    second = api_key_create(user=second_finance)[1]
    body = {"user": customer.pk, "amount": 5000, "reason": "?", "idempotency_key": "r1"}
    request_id = api_call(client, first, "post", "grants", body).json()["id"]
    response = api_call(client, second, "post", f"grant-requests/{request_id}/reject", {})
    error_of(response, 400, "invalid_request_error", "note")
    response = api_call(
        client, second, "post", f"grant-requests/{request_id}/reject", {"note": "sem PIX"}
    )
    assert response.status_code == 200 and response.json()["status"] == "rejected"
    approve = api_call(client, second, "post", f"grant-requests/{request_id}/approve")
    error_of(approve, 409, "grant_request_closed")
    assert manual_grants(customer) == []
    assert LogEntry.objects.filter(object_id=str(request_id)).count() == 1


def test_support_cannot_approve(client, approval, finance_user, support_user, customer):
    body = {"user": customer.pk, "amount": 5000, "reason": "?", "idempotency_key": "s1"}
    first = api_key_create(user=finance_user)[1]
    request_id = api_call(client, first, "post", "grants", body).json()["id"]
    support = api_key_create(user=support_user)[1]
    assert api_call(client, support, "get", "grant-requests").status_code == 200
    response = api_call(client, support, "post", f"grant-requests/{request_id}/approve")
    error_of(response, 403, "permission_denied")
    assert manual_grants(customer) == []


def test_the_user_the_credits_are_for_cannot_approve(
    client, approval, finance_customer, admin_user
):
    first = api_key_create(user=admin_user)[1]
    body = {"user": finance_customer.pk, "amount": 5000, "reason": "?", "idempotency_key": "u1"}
    request_id = api_call(client, first, "post", "grants", body).json()["id"]
    key = api_key_create(user=finance_customer)[1]
    response = api_call(client, key, "post", f"grant-requests/{request_id}/approve")
    error_of(response, 403, "own_account")
    assert manual_grants(finance_customer) == []


def test_admin_grant_above_threshold_is_pending_then_approved_by_another(
    client, approval, finance_user, second_finance, customer
):
    logged_in(client, finance_user)
    add = reverse("admin:accounts_user_add_credits", args=[customer.pk])
    form = client.get(add, HTTP_ACCEPT_LANGUAGE="pt-br")
    assert "Acima de 1.000 créditos" in form.text  # the form says a second person is needed
    data = {"amount": "250000", "reason": "PIX grande", "idempotency_key": "k" * 32}
    response = client.post(add, data, HTTP_ACCEPT_LANGUAGE="pt-br")
    grant_request = GrantRequest.objects.get()
    assert response.url == reverse("admin:backoffice_grantrequest_change", args=[grant_request.pk])
    client.post(add, data)  # a double submission is the same request
    assert GrantRequest.objects.count() == 1 and manual_grants(customer) == []
    page = client.get(response.url, HTTP_ACCEPT_LANGUAGE="pt-br")
    assert "pendente" in page.text and "approve-grant" not in page.text
    approve = reverse("admin:backoffice_grantrequest_approve", args=[grant_request.pk])
    refused = client.post(approve, HTTP_ACCEPT_LANGUAGE="pt-br")
    assert "outro membro da equipe" in refused.text
    assert manual_grants(customer) == []

    logged_in(client, second_finance)
    assert "approve-grant" in client.get(response.url).text
    done = client.post(approve)
    assert done.status_code == 302
    client.post(approve)
    assert manual_grants(customer) == [250_000]
    grant_request.refresh_from_db()
    assert grant_request.status == "approved" and grant_request.decided_by == second_finance


def test_admin_bulk_approve_and_reject(client, approval, finance_user, second_finance, customer):
    first = api_key_create(user=finance_user)[1]
    ids = []
    for n, amount in enumerate([2000, 3000, 4000]):
        body = {"user": customer.pk, "amount": amount, "reason": "x", "idempotency_key": f"b{n}"}
        ids.append(api_call(client, first, "post", "grants", body).json()["id"])
    changelist = reverse("admin:backoffice_grantrequest_changelist")
    logged_in(client, finance_user)
    client.post(changelist, {"action": "approve_selected", "_selected_action": ids})
    assert manual_grants(customer) == []  # the requester's own approvals are refused
    logged_in(client, second_finance)
    client.post(changelist, {"action": "approve_selected", "_selected_action": ids[:2]})
    client.post(changelist, {"action": "reject_selected", "_selected_action": ids})
    assert sorted(manual_grants(customer)) == [2000, 3000]
    states = dict(GrantRequest.objects.values_list("amount", "status"))
    assert states == {2000: "approved", 3000: "approved", 4000: "rejected"}


def test_cli_is_not_held_by_the_threshold(approval, customer, capsys):
    call_command("grant_credits", customer.email, "500000", "--reason", "operador")
    assert manual_grants(customer) == [500_000]
    assert not GrantRequest.objects.exists()


def test_custom_purchase_above_threshold_needs_a_package(api_client_admin, approval, customer):
    body = {"user": customer.pk, "credits": 5000, "price_cents": 1, "idempotency_key": "c"}
    error_of(api_client_admin("post", "purchases", body), 400, "invalid_request_error", "credits")
    assert not Purchase.objects.exists()


def test_database_refuses_an_approval_by_the_requester(approval, finance_user, customer):
    from django.db import IntegrityError, transaction

    grant_request = GrantRequest.objects.create(
        user=customer,
        amount=5000,
        source="manual",
        reason="x",
        idempotency_key="db",
        requested_by=finance_user,
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        GrantRequest.objects.filter(pk=grant_request.pk).update(
            status="approved", decided_by=finance_user
        )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_approvals_at_once_grant_once(approval, plan):
    customer = UserFactory(email="corrida@example.com")
    requester = staff("pede@solaris.test", group=FINANCE)
    approvers = [staff(f"aprova{n}@solaris.test", group=FINANCE) for n in range(2)]
    grant_request = GrantRequest.objects.create(
        user=customer,
        amount=5000,
        source="manual",
        reason="x",
        idempotency_key="race",
        requested_by=requester,
    )
    barrier = threading.Barrier(2)
    answers = []

    def approve(approver):
        barrier.wait()
        try:
            decided = grant_request_approve(grant_request=grant_request, approver=approver)
            answers.append((decided.status, decided.grant_id))
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(who,)) for who in approvers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(answers) == 2 and len(set(answers)) == 1 and answers[0][0] == "approved"
    assert manual_grants(customer) == [5000]
    assert ledger_violations() == []


def test_the_service_itself_refuses_an_approver_without_the_grant_right(
    approval, finance_user, support_user, customer
):
    from django.core.exceptions import ValidationError

    grant_request = GrantRequest.objects.create(
        user=customer,
        amount=5000,
        source="manual",
        reason="x",
        idempotency_key="perm",
        requested_by=finance_user,
    )
    with pytest.raises(ValidationError) as refused:
        grant_request_approve(grant_request=grant_request, approver=support_user)
    assert refused.value.code == "permission"
    assert manual_grants(customer) == []


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": True}, "amount"),
        ({"source": "purchase"}, "source"),
        ({"expires_at": "past"}, "expires_at"),
        ({"idempotency_key": " "}, "idempotency_key"),
    ],
)
def test_a_request_is_checked_like_a_grant(approval, finance_user, customer, change, code):
    from datetime import timedelta

    from django.core.exceptions import ValidationError
    from django.utils import timezone

    from backoffice.services import staff_grant

    if change.get("expires_at") == "past":
        change["expires_at"] = timezone.now() - timedelta(days=1)
    asked = {"amount": 5000, "idempotency_key": "chk", "reason": "x", **change}
    with pytest.raises(ValidationError) as refused:
        staff_grant(actor=finance_user, user=customer, **asked)
    assert refused.value.code == code
    assert not GrantRequest.objects.exists() and manual_grants(customer) == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_request_twice_at_once_is_one_request(approval, plan):
    from backoffice.services import staff_grant

    customer = UserFactory(email="duplo@example.com")
    requester = staff("pede@solaris.test", group=FINANCE)
    barrier = threading.Barrier(2)
    answers = []

    def ask():
        barrier.wait()
        try:
            answers.append(
                staff_grant(
                    actor=requester, user=customer, amount=5000, idempotency_key="twice", reason="x"
                ).pk
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(answers) == 2 and answers[0] == answers[1]
    assert GrantRequest.objects.count() == 1
