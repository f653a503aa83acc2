import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiKey
from accounts.selectors import key_find
from accounts.services import api_key_create, key_touch
from credits.models import Purchase
from tests.factories import CreditPackageFactory, UserFactory

KEYS = reverse("portal:api-keys")


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def test_key_is_created_and_its_plaintext_shown_once(signed_in, user):
    response = signed_in.post(KEYS, {"name": "notebook"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    raw = response.context["created"]["raw"]
    assert raw.startswith("sol-") and raw in response.content.decode()
    assert key_find(raw_key=raw).user == user
    assert ApiKey.objects.get(user=user).name == "notebook"
    listing = signed_in.get(KEYS).content.decode()
    assert raw not in listing
    assert raw[:10] + "…" in listing and "notebook" in listing


def test_key_name_is_required(signed_in, user):
    response = signed_in.post(KEYS, {"name": "  "})
    assert response.context["form"].errors
    assert not ApiKey.objects.filter(user=user).exists()


def test_keys_list_only_the_users_own_with_last_use(signed_in, user):
    other = UserFactory(email="bia@example.com")
    api_key_create(user=other, name="bia-secret-key")
    used, _raw = api_key_create(user=user, name="mine")
    api_key_create(user=user, name="spare")
    key_touch(key=used)
    response = signed_in.get(KEYS)
    html = response.content.decode()
    assert "mine" in html and "spare" in html and "bia-secret-key" not in html
    assert [k.name for k in response.context["api_keys"]] == ["spare", "mine"]
    row = html[html.index(">mine</td>") : html.index("</tr>", html.index(">mine</td>"))]
    assert timezone.localtime(used.last_used_at).strftime("%d/%m/%Y") in row
    assert "nunca" in html  # the spare key was never used


def test_revoke_own_key_and_not_another_users(signed_in, user):
    key, raw = api_key_create(user=user, name="old")
    response = signed_in.post(reverse("portal:api-key-revoke", args=[key.pk]))
    assert response.status_code == 302
    assert key_find(raw_key=raw) is None
    other_key, other_raw = api_key_create(user=UserFactory(email="bia@example.com"), name="x")
    assert signed_in.post(reverse("portal:api-key-revoke", args=[other_key.pk])).status_code == 404
    assert key_find(raw_key=other_raw) == other_key
    assert signed_in.get(reverse("portal:api-key-revoke", args=[key.pk])).status_code == 405


def test_purchase_pages_list_packages_and_confirm_once(signed_in, user, settings):
    settings.SOLARIS_PURCHASE_EMAIL = "compras@solaris.example"
    package = CreditPackageFactory(name="Pacote 50 mil", credits=50_000, price_cents=2_990)
    CreditPackageFactory(name="Fora de venda", active=False)
    listing = signed_in.get(reverse("portal:purchase")).content.decode()
    assert "Pacote 50 mil" in listing and "Fora de venda" not in listing
    assert "compras@solaris.example" in listing
    assert "Solicitar compra: Pacote 50 mil, R$ 29,90" in listing  # each button names its package
    url = reverse("portal:purchase-confirm", args=[package.pk])
    assert signed_in.get(url).status_code == 200
    first = signed_in.post(url, {"package": package.pk})
    purchase = Purchase.objects.get(user=user)
    order = reverse("portal:order", args=[purchase.pk])
    assert first.status_code == 302 and first["Location"] == order
    again = signed_in.post(url, {"package": package.pk})
    assert again.status_code == 302 and again["Location"] == order  # the same open order
    assert Purchase.objects.filter(user=user).count() == 1
    assert (purchase.status, purchase.credits, purchase.price_cents) == ("requested", 50_000, 2_990)
    page = signed_in.get(order).content.decode()
    assert f"Pedido #{purchase.pk} · R$ 29,90 · aguardando pagamento" in page
    assert "compras@solaris.example" in page  # the generic instructions name the e-mail
    statement = signed_in.get(reverse("portal:statement")).content.decode()
    assert 'id="pending-order"' in statement
    assert f"Pedido #{purchase.pk} · R$ 29,90 · aguardando pagamento" in statement


def test_purchase_refuses_bad_input_and_inactive_packages(signed_in, user):
    package = CreditPackageFactory(credits=1_000)
    other = CreditPackageFactory(credits=2_000)
    url = reverse("portal:purchase-confirm", args=[package.pk])
    for body in ({}, {"package": "x"}, {"package": 10**30}, {"package": other.pk}):
        response = signed_in.post(url, body)
        assert response.status_code == 400 and response.context["form"].errors
    assert not Purchase.objects.exists()
    hidden = CreditPackageFactory(active=False)
    assert signed_in.get(reverse("portal:purchase-confirm", args=[hidden.pk])).status_code == 404
    assert signed_in.post(reverse("portal:purchase-confirm", args=[hidden.pk])).status_code == 404


def test_two_people_buying_the_same_package_each_get_their_own_order(client, user):
    package = CreditPackageFactory(credits=1_000)
    other = UserFactory(email="bia@example.com")
    url = reverse("portal:purchase-confirm", args=[package.pk])
    client.force_login(other)
    client.post(url, {"package": package.pk})
    client.force_login(user)
    client.post(url, {"package": package.pk})
    assert Purchase.objects.filter(user=user).count() == 1
    assert Purchase.objects.filter(user=other).count() == 1
    theirs = Purchase.objects.get(user=other)
    assert client.get(reverse("portal:order", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("portal:order-panel", args=[theirs.pk])).status_code == 404


def test_pages_need_a_login(client, db):
    for name in ("portal:api-keys", "portal:purchase", "portal:calls-csv"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and response["Location"].startswith("/entrar/")
