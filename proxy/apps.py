from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProxyConfig(AppConfig):
    name = "proxy"
    # Named for what admin shows of it, the calls, in the words of the end-user pages.
    verbose_name = _("Calls")

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from accounts.models import ApiKey, Integration, User
        from kernel.local_cache import lookups_changed

        # Keys and users are cached per process here; credits empties the caches for its models.
        for model in (ApiKey, Integration, User):
            post_save.connect(
                lookups_changed, sender=model, dispatch_uid=f"lookups:{model.__name__}"
            )
            post_delete.connect(
                lookups_changed, sender=model, dispatch_uid=f"lookups-del:{model.__name__}"
            )
