from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CreditsConfig(AppConfig):
    name = "credits"
    verbose_name = _("Credits")

    def ready(self):
        from django.db.models.signals import post_delete, post_migrate, post_save

        from credits.models import ModelPrice, Plan, Subscription
        from credits.services.plans import plan_default_ensure_after_migrate
        from kernel.local_cache import lookups_changed

        # After every migrate (and test flush), as the migration does: there is a default plan.
        post_migrate.connect(plan_default_ensure_after_migrate, sender=self)

        # Plans, prices and subscriptions are cached per process (credits.selectors, the proxy).
        for model in (ModelPrice, Plan, Subscription):
            post_save.connect(
                lookups_changed, sender=model, dispatch_uid=f"lookups:{model.__name__}"
            )
            post_delete.connect(
                lookups_changed, sender=model, dispatch_uid=f"lookups-del:{model.__name__}"
            )
