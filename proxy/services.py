"""Admission and settlement of proxied calls (docs/proxy.md).

The view makes exactly two synchronous hops per call: `call_admit` before forwarding (identity,
plan, price, rate limit, circuit, hold) and `call_settle` after it (settle or release the hold,
write the CallRecord, feed the circuit breaker). Both run in proxy.views' small thread pool and never
hold a transaction across the network call to LiteLLM.
"""

import logging
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.utils.translation import gettext as _
from django.utils.translation import override

from accounts.keys import hash_key
from accounts.models import ApiKey, Integration, User
from accounts.selectors import key_find
from accounts.services import key_touch, usable_identity, user_ensure_active
from credits.models import ModelPrice, Plan, Subscription
from credits.selectors import AccountSummary, account_summary, member_plan, subscription_of
from credits.services import (
    InsufficientCredits,
    hold_create,
    hold_release,
    hold_settle_summarised,
    identity_preview,
    identity_resolve,
    notification_credits_refused,
)
from kernel.errors import InvalidApiKey, SolarisError, UserIdentityMissing
from kernel.local_cache import TtlCache
from proxy import notices, protection
from proxy.models import CallRecord
from proxy.payload import ChatRequest, prompt_estimate

logger = logging.getLogger(__name__)

EndReason = CallRecord.EndReason


@dataclass(frozen=True)
class Caller:
    user: User
    api_key_id: int | None
    integration_id: int | None
    notices: bool = False  # refusals about the user are answered in band (proxy.notices)


@dataclass
class Admitted:
    call_id: str
    caller: Caller
    model: str
    stream: bool
    n: int
    prompt_estimate: int
    max_tokens: int
    held: int
    ticket: protection.CircuitTicket
    summary: AccountSummary | None  # after admission (the answer's credit headers)
    subscription: Subscription | None  # as read at admission (plan and renewal of summaries)
    conversation_id: str


@dataclass
class Outcome:
    end_reason: str
    status_code: int
    error_code: str = ""
    usage: tuple[int, int] | None = None  # (prompt, completion) reported by the upstream
    produced_bytes: int = 0  # bytes of generated text relayed (upper bound of its tokens)
    circuit: str = protection.IGNORED  # what it tells the circuit breaker (protection.SUCCESS…)
    fallback: str = ""  # the model group LiteLLM says answered instead (relay.fallback_of)
    models: set[str] = field(default_factory=set)  # model names the answer itself carried


class Refusal(SolarisError):
    """A refusal after the caller is known: recorded, and answered with their credit headers, or
    as the chat answer `notice` when the caller's integration answers it in band."""

    def __init__(
        self,
        error: SolarisError,
        *,
        summary: AccountSummary | None,
        notice: notices.Notice | None = None,
    ):
        super().__init__(
            error.message,
            status=error.status_code,
            code=error.code,
            type=error.type,
            param=error.param,
            headers=error.headers,
        )
        self.summary = summary
        self.notice = notice


def call_id_for(request_id: str, *, from_client: bool) -> str:
    """Unique per call even when a client repeats its X-Request-ID (holds and records key on it)."""
    if not from_client:
        return request_id
    return f"{request_id[:100]}.{uuid.uuid4().hex[:16]}"


# Per process, short TTL: see kernel/local_cache.py for the bound on revocations and edits.
_keys: TtlCache[ApiKey | Integration] = TtlCache("keys")
_prices: TtlCache[ModelPrice] = TtlCache("prices")
_priced: TtlCache[list[str]] = TtlCache("priced models")


def key_of(*, raw_key: str) -> ApiKey | Integration:
    key = None
    if raw_key.startswith("sol-"):
        key = _keys.get(hash_key(raw_key), lambda: key_find(raw_key=raw_key))
    if key is None:
        raise InvalidApiKey(
            _("Missing or invalid API key. Send it as 'Authorization: Bearer sol-…'.")
        )
    return key


def caller_authenticate(
    *, raw_key: str, email: str | None, librechat_id: str | None, body_user: str | None
) -> Caller:
    """The key's owner, or for an integration key the end user it speaks for (docs/librechat.md).
    Whether that user may call (suspension) is call_admit's to check, so the refusal is recorded."""
    key = key_of(raw_key=raw_key)
    if isinstance(key, Integration):
        user = identity_resolve(
            integration=key, email=email, librechat_id=librechat_id, body_user=body_user
        )
        caller = Caller(
            user=user, api_key_id=None, integration_id=key.pk, notices=key.notices_in_band
        )
    else:
        caller = Caller(user=key.user, api_key_id=key.pk, integration_id=None)
    key_touch(key=key)
    return caller


def price_of(*, model: str) -> ModelPrice | None:
    # The loaders are lambdas: building a queryset costs more than the cache hit it would be for.
    return _prices.get(model, lambda: ModelPrice.objects.filter(model=model, active=True).first())


def plan_of(*, user_id: int, subscription: Subscription | None = None) -> Plan | None:
    """The user's plan (the default plan without a subscription); None when it is inactive."""
    plan = member_plan(subscription=subscription or subscription_of(user_id=user_id))
    return plan if plan is not None and plan.active else None


def priced_models() -> list[str]:
    """The models with an active price, by name."""
    return (
        _priced.get(
            "all",
            lambda: list(
                ModelPrice.objects.filter(active=True)
                .order_by("model")
                .values_list("model", flat=True)
            ),
        )
        or []
    )


def models_visible(*, raw_key: str, email: str | None, librechat_id: str | None) -> list[str]:
    """The priced models the caller's plan allows, from Solaris's own tables (the view narrows
    them to LiteLLM's list when it is known).

    LibreChat asks before every chat call with the user's headers and counts a failure against the
    user, so an integration's user is answered whatever their state: suspended or out of credits
    (the chat call tells them in band), or not created yet (the plan they would get; nobody is
    created here). Only a wrong key or an identity that cannot be resolved is refused.
    """
    key = key_of(raw_key=raw_key)
    if isinstance(key, Integration):
        user, plan = identity_preview(integration=key, email=email, librechat_id=librechat_id)
        if user is not None:
            plan = plan_of(user_id=user.pk)
    else:
        user_ensure_active(user=key.user)
        plan = plan_of(user_id=key.user.pk)
    key_touch(key=key)
    if plan is None or not plan.active:
        return []
    return [name for name in priced_models() if plan.allows(name)]


def usable_conversation(value: str | None) -> str:
    return usable_identity(value)[:128]


def quota_refusal(*, user: User, short: InsufficientCredits) -> SolarisError:
    """The one place a call is refused for lack of credits (notifications hook here): credits
    exhausted when the account is blocked, else this request is larger than what is left."""
    logger.info(
        "call refused: insufficient credits",
        extra={
            "user_id": user.pk,
            "available": short.available,
            "needed": short.needed,
            "blocked": short.blocked,
        },
    )
    try:
        notification_credits_refused(user_id=user.pk)
    except Exception:
        # The refusal must reach the caller even if the blocked e-mail cannot be queued.
        logger.exception("blocked notification for a refused call failed")
    if not short.blocked:
        with override(user.language):
            message = _(
                "This request is larger than your remaining credits: it may cost up to "
                "%(needed)s credits and %(available)s are left. Ask for a shorter answer "
                "(max_tokens), shorten the conversation or choose a cheaper model; to buy more, "
                "open %(url)s."
            ) % {
                "needed": short.needed,
                "available": short.available,
                "url": f"{settings.SOLARIS_PUBLIC_URL}/conta/",
            }
        return SolarisError(
            message,
            status=429,
            code="request_exceeds_credits",
            type="insufficient_quota",
            headers={"x-should-retry": "false"},
        )
    with override(user.language):
        message = _(
            "You have no credits left for this request. To buy more, open %(url)s "
            "or write to %(email)s."
        ) % {
            "url": f"{settings.SOLARIS_PUBLIC_URL}/conta/",
            "email": settings.SOLARIS_PURCHASE_EMAIL,
        }
    return SolarisError(
        message,
        status=429,
        code="insufficient_quota",
        type="insufficient_quota",
        headers={"x-should-retry": "false"},
    )


def max_tokens_for(*, request: ChatRequest, plan: Plan, price: ModelPrice) -> int:
    """Asked, else the plan default; never above the model's own output limit."""
    asked = request.max_tokens_asked or plan.default_max_tokens
    return min(asked, price.max_output_tokens) if price.max_output_tokens else asked


_record_insert: tuple[str, list] | None = None


def record_write(**values) -> CallRecord:
    """Insert one CallRecord: the model's own INSERT, without QuerySet.create's compiler (a third of
    a settlement's CPU went to compiling this statement). No signal listens to CallRecord saves."""
    global _record_insert
    if _record_insert is None:
        meta = CallRecord._meta
        fields = [field for field in meta.concrete_fields if not field.primary_key]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(str(field.column)) for field in fields)
        table, pk = quote(meta.db_table), quote(str(meta.pk.column))
        marks = ", ".join(["%s"] * len(fields))
        # Names from the model's meta, values as parameters.
        sql = f"INSERT INTO {table} ({columns}) VALUES ({marks}) RETURNING {pk}"  # noqa: S608
        _record_insert = (sql, fields)
    sql, fields = _record_insert
    record = CallRecord(**values)
    params = [field.get_db_prep_save(field.pre_save(record, True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        record.pk = cursor.fetchone()[0]
    record._state.adding = False
    return record


def _refused(
    caller: Caller,
    *,
    call_id: str,
    request: ChatRequest | None,
    conversation_id: str,
    error: SolarisError,
) -> Refusal:
    summary = account_summary(user_id=caller.user.pk)
    notice = None
    # A body that could not be read is answered as the error it is.
    if request is not None and notices.in_band(enabled=caller.notices, code=error.code):
        notice = notices.notice_for(
            error=error, language=caller.user.language, summary=summary, model=request.model
        )
    record_write(
        request_id=call_id,
        user=caller.user,
        api_key_id=caller.api_key_id,
        integration_id=caller.integration_id,
        model=request.model[:200] if request else "",
        stream=request.stream if request else False,
        status_code=200 if notice else error.status_code,
        end_reason=EndReason.REFUSED,
        error_code=error.code,
        conversation_id=conversation_id[:128],
    )
    return Refusal(error, summary=summary, notice=notice)


def call_admit(
    *,
    call_id: str,
    raw_key: str,
    email: str | None,
    librechat_id: str | None,
    conversation_id: str,
    request: ChatRequest | None,
    parse_error: SolarisError | None = None,
) -> Admitted:
    """Who calls, may they, and the hold for the worst case. Raises SolarisError (or Refusal)."""
    try:
        caller = caller_authenticate(
            raw_key=raw_key,
            email=email,
            librechat_id=librechat_id,
            body_user=request.body_user if request else None,
        )
    except UserIdentityMissing:
        if parse_error is None:
            raise
        # The key is good; the identity may be in the body that could not be read.
        raise parse_error from None
    try:
        with override(caller.user.language):
            user_ensure_active(user=caller.user)
            if parse_error is not None or request is None:
                raise parse_error or SolarisError(_("Invalid request."))
            return _admit(caller, call_id=call_id, request=request, conversation_id=conversation_id)
    except SolarisError as error:
        raise _refused(
            caller,
            call_id=call_id,
            request=request,
            conversation_id=conversation_id,
            error=error,
        ) from None


def _admit(caller: Caller, *, call_id: str, request: ChatRequest, conversation_id: str):
    user = caller.user
    price = price_of(model=request.model)
    if price is None:
        raise SolarisError(
            _("The model '%(model)s' does not exist or is not available.")
            % {"model": request.model},
            status=404,
            code="model_not_found",
            param="model",
        )
    subscription = subscription_of(user_id=user.pk)
    plan = plan_of(user_id=user.pk, subscription=subscription)
    if plan is None or not plan.allows(request.model):
        raise SolarisError(
            _("Your plan does not include the model '%(model)s'.") % {"model": request.model},
            status=403,
            code="model_not_allowed",
            type="permission_error",
            param="model",
        )
    wait = protection.rate_limit_hit(user_id=user.pk, limit=plan.requests_per_minute)
    if wait is not None:
        raise SolarisError(
            _("Too many requests: your plan allows %(limit)d per minute. Try again shortly.")
            % {"limit": plan.requests_per_minute},
            status=429,
            code="rate_limit_exceeded",
            type="rate_limit_error",
            headers={"Retry-After": str(wait)},
        )
    ticket = protection.circuit_admit()
    if ticket.state == protection.OPEN:
        raise upstream_unavailable(retry_after=ticket.retry_after)
    estimate = prompt_estimate(request.body)
    try:
        admission = hold_create(
            user=user,
            request_id=call_id,
            price=price,
            prompt_tokens=estimate,
            max_tokens=max_tokens_for(request=request, plan=plan, price=price),
            n=request.n,
            # The answer's credit headers: the account with this call's worst case held.
            with_summary=True,
            summary_of=subscription,
        )
    except InsufficientCredits as short:
        raise quota_refusal(user=user, short=short) from None
    return Admitted(
        call_id=call_id,
        caller=caller,
        model=request.model,
        stream=request.stream,
        n=request.n,
        prompt_estimate=estimate,
        max_tokens=admission.max_tokens,
        held=admission.hold.amount,
        ticket=ticket,
        summary=admission.summary,
        subscription=subscription,
        conversation_id=conversation_id,
    )


def upstream_unavailable(*, retry_after: int) -> SolarisError:
    return SolarisError(
        _("The AI service is temporarily unavailable. Try again in a few seconds."),
        status=503,
        code="upstream_unavailable",
        type="server_error",
        headers={"Retry-After": str(retry_after)},
    )


def charged_tokens(admitted: Admitted, outcome: Outcome) -> tuple[int, int]:
    """The upstream's usage when it sent one; else the prompt estimate and the text relayed,
    both upper bounds, the output capped at what the hold allowed."""
    if outcome.usage is not None:
        return outcome.usage
    produced = min(outcome.produced_bytes, admitted.max_tokens * admitted.n)
    return admitted.prompt_estimate, produced


def answered_by(admitted: Admitted, outcome: Outcome) -> tuple[str, ModelPrice | None]:
    """The model that answered when it is not the one admitted ("" otherwise), and its price.

    LiteLLM's fallback headers name it; a stream that fell back midway names it in its chunks,
    which count only when they name another priced model (a provider's own dated model name is
    not a fallback)."""
    if outcome.fallback and outcome.fallback != admitted.model:
        return outcome.fallback, price_of(model=outcome.fallback)
    for name in sorted(outcome.models - {admitted.model}):
        price = price_of(model=name)
        if price is not None:
            return name, price
    return "", None


def call_settle(
    *, admitted: Admitted, outcome: Outcome, duration_ms: int, with_summary: bool = False
) -> tuple[CallRecord, AccountSummary | None]:
    """Close the hold and record: charge what was produced (at the higher price when another
    model answered), or release the hold when the upstream failed before any output."""
    prompt = completion = credits = 0
    summary = None
    answered, answered_price = answered_by(admitted, outcome)
    if answered and answered_price is None:
        logger.warning(
            "answered by an unpriced model: billed at the admitted model's price",
            extra={"call_id": admitted.call_id, "model": admitted.model, "answered": answered},
        )
    # A refusal here is an upstream failure answered in band (proxy.notices): nothing was produced.
    failed = outcome.end_reason in (EndReason.UPSTREAM_ERROR, EndReason.TIMEOUT, EndReason.REFUSED)
    if failed and outcome.usage is None and not outcome.produced_bytes:
        hold_release(request_id=admitted.call_id)
    else:
        prompt, completion = charged_tokens(admitted, outcome)
        settlement = hold_settle_summarised(
            request_id=admitted.call_id,
            prompt_tokens=prompt,
            completion_tokens=completion,
            summary_of=admitted.subscription,
            answered_by=answered_price,
        )
        entry, summary = settlement.entry, settlement.summary
        credits = -entry.amount if entry is not None else 0
    caller = admitted.caller
    record = record_write(
        request_id=admitted.call_id,
        user=caller.user,
        api_key_id=caller.api_key_id,
        integration_id=caller.integration_id,
        model=admitted.model,
        answered_model=answered[:200],
        stream=admitted.stream,
        prompt_tokens=prompt,
        completion_tokens=completion,
        credits=credits,
        held=admitted.held,
        status_code=outcome.status_code,
        end_reason=outcome.end_reason,
        error_code=outcome.error_code[:64],
        conversation_id=admitted.conversation_id[:128],
        duration_ms=duration_ms,
    )
    protection.circuit_record(
        ticket=admitted.ticket, verdict=outcome.circuit, user_id=caller.user.pk
    )
    if not with_summary:
        summary = None
    elif summary is None:
        summary = account_summary(user_id=caller.user.pk)
    return record, summary
