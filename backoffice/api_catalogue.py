"""Plans and model prices in the admin API (docs/admin.md): what an operator's setup script
creates before the first user, with the same rights as the admin's plan and price pages."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from backoffice import api_params as params
from backoffice import serializers as s
from backoffice.api import ERRORS, NOT_FOUND, AdminApiView, service_error
from credits.models import ModelPrice, Plan
from credits.services import model_price_set, plan_create, plan_update
from kernel.errors import SolarisError

CONFLICT = {409: OpenApiResponse(s.ErrorSerializer, description="It exists already.")}
# credits.services.model_price_set codes → the request field at fault.
PRICE_PARAMS = {"model": "model", "max_tokens": "max_output_tokens"}


class PlanListCreate(AdminApiView):
    required_permissions = {"GET": ("credits.view_plan",), "POST": ("credits.add_plan",)}
    pagination_class = params.Pages
    serializer_class = s.PlanSerializer

    @extend_schema(
        summary="List plans",
        parameters=[OpenApiParameter("active", bool)],
        responses={200: s.PlanSerializer(many=True), **ERRORS},
    )
    def get(self, request):
        plans = Plan.objects.order_by("slug")
        active = params.boolean(request, "active")
        if active is not None:
            plans = plans.filter(active=active)
        page = self.paginate_queryset(plans)
        return self.get_paginated_response(s.PlanSerializer(page, many=True).data)

    @extend_schema(
        summary="Create a plan",
        description="Only one plan is the default (unset the current one first), and the "
        "default plan stays active.",
        request=s.PlanCreateSerializer,
        responses={201: s.PlanSerializer, **CONFLICT, **ERRORS},
    )
    def post(self, request):
        data = self.parse(s.PlanCreateSerializer)
        try:
            plan = plan_create(**data)
        except ValidationError as error:
            raise _plan_error(error) from None
        return Response(s.PlanSerializer(plan).data, status=status.HTTP_201_CREATED)


class PlanDetail(AdminApiView):
    required_permissions = {"GET": ("credits.view_plan",), "PATCH": ("credits.change_plan",)}
    serializer_class = s.PlanSerializer

    @extend_schema(summary="A plan", responses={200: s.PlanSerializer, **NOT_FOUND, **ERRORS})
    def get(self, request, slug: str):
        return Response(s.PlanSerializer(get_object_or_404(Plan, slug=slug)).data)

    @extend_schema(
        summary="Change a plan (the fields given)",
        description="Subscribers keep their current cycle; a new allowance counts from their "
        "next cycle. The slug does not change.",
        request=s.PlanChangeSerializer,
        responses={200: s.PlanSerializer, **NOT_FOUND, **ERRORS},
    )
    def patch(self, request, slug: str):
        plan = get_object_or_404(Plan, slug=slug)
        data = self.parse(s.PlanChangeSerializer)
        try:
            plan = plan_update(plan=plan, **data)
        except ValidationError as error:
            raise _plan_error(error) from None
        return Response(s.PlanSerializer(plan).data)


def _plan_error(error: ValidationError) -> SolarisError:
    """credits.services' plan rules name the field at fault; a slug taken is a conflict."""
    if not hasattr(error, "error_dict"):
        return service_error(error)
    field, errors = next(iter(error.error_dict.items()))
    message = " ".join(str(text) for problem in errors for text in problem.messages)
    if any(problem.code == "unique" for problem in errors):
        return SolarisError(message, status=409, code="already_exists", param=field)
    return SolarisError(message, param=None if field == "__all__" else field)


class ModelPriceListCreate(AdminApiView):
    required_permissions = {
        "GET": ("credits.view_modelprice",),
        "POST": ("credits.add_modelprice",),
    }
    pagination_class = params.Pages
    serializer_class = s.ModelPriceSerializer

    @extend_schema(
        summary="List model prices",
        parameters=[OpenApiParameter("active", bool)],
        responses={200: s.ModelPriceSerializer(many=True), **ERRORS},
    )
    def get(self, request):
        prices = ModelPrice.objects.order_by("model")
        active = params.boolean(request, "active")
        if active is not None:
            prices = prices.filter(active=active)
        page = self.paginate_queryset(prices)
        return self.get_paginated_response(s.ModelPriceSerializer(page, many=True).data)

    @extend_schema(
        summary="Price a model (credits per prompt and per completion token)",
        description="Active unless `active` is false. A model already priced is a 409: "
        "change it with PATCH.",
        request=s.ModelPriceCreateSerializer,
        responses={201: s.ModelPriceSerializer, **CONFLICT, **ERRORS},
    )
    def post(self, request):
        data = self.parse(s.ModelPriceCreateSerializer)
        if ModelPrice.objects.filter(model=data["model"].strip()).exists():
            raise SolarisError(
                _("%(model)s is priced already: change it with PATCH.")
                % {"model": data["model"].strip()},
                status=409,
                code="already_exists",
                param="model",
            )
        price = _price_set(
            model=data["model"],
            input_weight=data["input_weight"],
            output_weight=data["output_weight"],
            max_output_tokens=data.get("max_output_tokens"),
            active=data["active"],
        )
        return Response(s.ModelPriceSerializer(price).data, status=status.HTTP_201_CREATED)


class ModelPriceDetail(AdminApiView):
    required_permissions = {
        "GET": ("credits.view_modelprice",),
        "PATCH": ("credits.change_modelprice",),
    }
    serializer_class = s.ModelPriceSerializer

    @extend_schema(
        summary="A model's price",
        responses={200: s.ModelPriceSerializer, **NOT_FOUND, **ERRORS},
    )
    def get(self, request, model: str):
        return Response(s.ModelPriceSerializer(get_object_or_404(ModelPrice, model=model)).data)

    @extend_schema(
        summary="Change a model's price (the fields given)",
        description="Calls already admitted are billed at the price they were admitted with.",
        request=s.ModelPriceChangeSerializer,
        responses={200: s.ModelPriceSerializer, **NOT_FOUND, **ERRORS},
    )
    def patch(self, request, model: str):
        price = get_object_or_404(ModelPrice, model=model)
        data = self.parse(s.ModelPriceChangeSerializer)
        price = _price_set(
            model=price.model,
            input_weight=data.get("input_weight", price.input_weight),
            output_weight=data.get("output_weight", price.output_weight),
            max_output_tokens=data.get("max_output_tokens", price.max_output_tokens),
            active=data.get("active", price.active),
        )
        return Response(s.ModelPriceSerializer(price).data)


def _price_set(
    *,
    model: str,
    input_weight: Decimal,
    output_weight: Decimal,
    max_output_tokens: int | None,
    active: bool,
) -> ModelPrice:
    try:
        return model_price_set(
            model=model,
            input_weight=input_weight,
            output_weight=output_weight,
            max_output_tokens=max_output_tokens,
            active=active,
        )
    except ValidationError as error:
        code = getattr(error, "code", None) or ""
        param: str | None
        if code == "weights":
            param = "input_weight" if input_weight <= 0 else "output_weight"
        else:
            param = PRICE_PARAMS.get(code)
        raise SolarisError(" ".join(error.messages), param=param) from None
