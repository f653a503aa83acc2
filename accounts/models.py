from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields) -> "User":
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields) -> "User":
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    class Language(models.TextChoices):
        PT_BR = "pt-br", _("Portuguese (Brazil)")
        EN = "en", _("English")

    email = models.EmailField(_("e-mail"), unique=True)
    name = models.CharField(_("name"), max_length=150, blank=True)
    language = models.CharField(
        _("language"), max_length=8, choices=Language.choices, default=Language.PT_BR
    )
    librechat_id = models.CharField(
        _("LibreChat user id"),
        max_length=64,
        unique=True,
        null=True,
        blank=True,
        help_text=_("Set when the user first arrives through LibreChat."),
    )
    is_suspended = models.BooleanField(
        _("suspended"), default=False, help_text=_("A suspended user cannot make calls.")
    )
    is_staff = models.BooleanField(_("staff"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("joined"), default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = self.email.strip().lower()

    def get_full_name(self) -> str:
        return self.name or self.email

    def get_short_name(self) -> str:
        return (self.name or self.email).split(" ")[0]


class KeyBase(models.Model):
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=20, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ApiKey(KeyBase):
    """A personal key (`sol-…`): calls are made and billed as its user."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="api_keys",
        verbose_name=_("user"),
    )

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")


class Integration(KeyBase):
    """An integration key (`sol-int-…`) for LibreChat: names the end user in each request."""

    auto_provision = models.BooleanField(
        _("auto-provision unknown users"),
        default=True,
        help_text=_("Create unknown LibreChat users instead of refusing them."),
    )
    provision_domains = models.JSONField(
        _("e-mail domains provisioned"),
        default=list,
        blank=True,
        help_text=_(
            "Only unknown users whose e-mail is in one of these domains are created "
            "(exact domain, lower case). Empty: any domain."
        ),
    )
    # A plan slug rather than a foreign key: plans are credits' part, a layer above accounts.
    provision_plan = models.SlugField(
        _("plan of provisioned users"),
        blank=True,
        db_index=False,
        help_text=_("The plan new users are created on. Empty: the default plan."),
    )
    notices_in_band = models.BooleanField(
        _("refusals as chat answers"),
        default=True,
        help_text=_(
            "Answer refusals about the user (credits, suspension, plan, rate limit, AI service "
            "down) as a normal chat answer LibreChat shows, instead of an HTTP error it hides."
        ),
    )

    class Meta:
        verbose_name = _("integration")
        verbose_name_plural = _("integrations")


class LoginLink(models.Model):
    """A single-use, short-lived sign-in link (stored as a hash, like keys)."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("e-mail")
        LIBRECHAT = "librechat", _("LibreChat session")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="login_links",
        verbose_name=_("user"),
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    expires_at = models.DateTimeField(_("expires at"), db_index=True)
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("login link")
        verbose_name_plural = _("login links")

    def __str__(self) -> str:
        return f"{self.user} {self.channel} {self.created_at:%Y-%m-%d %H:%M}"
