"""The staff roles (docs/admin.md): 'Financeiro' moves credits, 'Suporte' only looks."""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions

FINANCE = "Financeiro"
SUPPORT = "Suporte"
# Every model of these apps can be viewed by both roles (apps absent from the project are skipped).
VIEWABLE_APPS = ["accounts", "credits", "payments", "proxy", "notifications", "admin", "backoffice"]
FINANCE_RIGHTS = [
    "backoffice.grant_credits",
    "backoffice.confirm_purchase",
    "backoffice.cancel_purchase",
    "backoffice.refund_purchase",
    # The payment instructions people read on a manual purchase request.
    "payments.change_paymentinstructions",
]


def may_change_account(*, actor, user) -> bool:
    """Whether `actor` may change `user`'s account (profile, password, suspension, plan).

    Only a superuser changes another staff member's account: whoever could reset a colleague's
    password or e-mail could act as them, and approve their own grants as the second person.
    """
    return actor.is_superuser or actor.pk == user.pk or not (user.is_staff or user.is_superuser)


# Only a superuser sets these, on any account (their own included).
PRIVILEGE_FIELDS = ["is_staff", "is_superuser", "groups", "user_permissions"]


def roles_sync(*, apps=global_apps) -> None:
    """Create or complete both groups. Idempotent; never removes a right an admin added."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    # Rights are made by a post_migrate handler that may not have run yet for these apps.
    installed = {config.label: config for config in global_apps.get_app_configs()}
    for label in {*VIEWABLE_APPS, *(right.split(".")[0] for right in FINANCE_RIGHTS)}:
        if label in installed:
            create_permissions(installed[label], apps=apps, verbosity=0)
    viewable = [label for label in VIEWABLE_APPS if label in installed]
    view_rights = list(
        Permission.objects.filter(
            content_type__app_label__in=viewable, codename__startswith="view_"
        )
    )
    finance_rights = []
    for right in FINANCE_RIGHTS:
        app_label, codename = right.split(".")
        finance_rights.extend(
            Permission.objects.filter(content_type__app_label=app_label, codename=codename)
        )
    support, _created = Group.objects.get_or_create(name=SUPPORT)
    support.permissions.add(*view_rights)
    finance, _created = Group.objects.get_or_create(name=FINANCE)
    finance.permissions.add(*view_rights, *finance_rights)


def roles_sync_after_migrate(sender, apps=global_apps, **kwargs) -> None:
    roles_sync(apps=apps)
