from decimal import Decimal

import factory

from accounts.models import User
from credits.models import CreditPackage, ModelPrice, Plan
from credits.services import plan_create, plan_default_set, user_create


class PlanFactory(factory.django.DjangoModelFactory):
    """Plans are made through the service; one made with is_default=True takes the default over
    from the plan `migrate` creates. A slug already there returns that plan."""

    class Meta:
        model = Plan

    slug = factory.Sequence(lambda n: f"plan-{n}")
    name = factory.LazyAttribute(lambda plan: plan.slug.title())
    monthly_allowance = 10_000
    requests_per_minute = 0
    default_max_tokens = 1_000

    @classmethod
    def _create(cls, model_class, *args, is_default=False, **kwargs):
        plan = model_class.objects.filter(slug=kwargs["slug"]).first() or plan_create(**kwargs)
        return plan_default_set(plan=plan) if is_default else plan


class UserFactory(factory.django.DjangoModelFactory):
    """Users are made through the service, so they get an account and their plan's allowance."""

    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Faker("name", locale="pt_BR")
    password = "senha-forte-123"
    language = User.Language.PT_BR
    plan_slug = None

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return user_create(**kwargs)


class ModelPriceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelPrice
        django_get_or_create = ("model",)

    model = factory.Sequence(lambda n: f"model-{n}")
    input_weight = Decimal("1")
    output_weight = Decimal("2")
    active = True


class CreditPackageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CreditPackage

    name = factory.Sequence(lambda n: f"Pacote {n}")
    credits = 50_000
    price_cents = 2_990
