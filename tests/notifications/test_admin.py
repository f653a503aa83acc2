"""Admin shows each notification and its delivery state, and can send one again."""

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import User
from notifications.models import Notification
from tests.notifications.test_delivery import make

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:notifications_notification_changelist")


@pytest.fixture
def rows(user):
    return {
        "sent": make(user, "sent", sent_at=timezone.now(), attempts=1),
        "pending": make(user, "pending", attempts=2, last_error="SMTPServerDisconnected: boom"),
        "failed": make(user, "failed", attempts=8, last_error="SMTPRecipientsRefused: nope"),
    }


def test_list_shows_kind_recipient_state_attempts_and_last_error(admin_client, rows):
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    page = response.content.decode()
    for text in ("alerta de créditos", "ana@example.com", "SMTPServerDisconnected: boom"):
        assert text in page
    with translation.override("pt-br"):  # the admin answers in the default language
        labels = [str(Notification.State(state).label) for state in ("sent", "pending", "failed")]
    for label in labels:
        assert f'<td class="field-state_display">{label}</td>' in page


@pytest.mark.parametrize("state", ["sent", "pending", "failed"])
def test_filter_by_state(admin_client, rows, state):
    response = admin_client.get(CHANGELIST, {"state": state})
    assert list(response.context["cl"].result_list) == [rows[state]]


def test_send_again_action(admin_client, rows, django_capture_on_commit_callbacks):
    selected = [rows["sent"].pk, rows["failed"].pk]
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            CHANGELIST, {"action": "send_again", "_selected_action": selected}, follow=True
        )
    assert "2 notificações na fila para serem enviadas de novo." in response.content.decode()
    assert len(mail.outbox) == 2
    rows["failed"].refresh_from_db()
    assert rows["failed"].state == Notification.State.SENT


def test_detail_is_read_only(admin_client, rows):
    url = reverse("admin:notifications_notification_change", args=[rows["pending"].pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    assert "SMTPServerDisconnected: boom" in response.content.decode()
    assert admin_client.post(url, {"recipient": "x@example.com"}).status_code == 403
    assert admin_client.get(reverse("admin:notifications_notification_add")).status_code == 403


def test_staff_who_may_only_view_cannot_send_again(client, rows):
    viewer = User.objects.create_user("viewer@example.com", "senha-forte-123", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_notification"))
    client.force_login(viewer)
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert "send_again" not in response.content.decode()
    client.post(CHANGELIST, {"action": "send_again", "_selected_action": [rows["failed"].pk]})
    assert mail.outbox == []
