from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class BackofficeConfig(AppConfig):
    name = "backoffice"
    verbose_name = _("Back office")

    def ready(self) -> None:
        from django.contrib import admin

        from backoffice import roles, schema  # noqa: F401  (schema registers the auth extension)

        admin.site.site_header = _("IA SOLARIS — credit management")
        admin.site.site_title = _("IA SOLARIS admin")
        admin.site.index_title = _("Credit management")

        # Re-run after every migrate (and test flush) so apps added later get their view rights too.
        post_migrate.connect(roles.roles_sync_after_migrate, sender=self)
