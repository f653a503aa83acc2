"""The benchmark's reach into the Solaris under test, run by that checkout's Python in its directory
(so it works for any checkout given by path). Only Solaris's own services are used to seed.

    python bench/django_side.py seed --tag T --input-weight 0.37 --output-weight 1.13 --small 3000
    python bench/django_side.py ledger --users 1,2,3

Each prints one JSON document on its last line.
"""

import argparse
import json
import os
import sys
from decimal import Decimal

HUGE = 10**15
MODELS = ("bench-model", "bench-slow")


def seed(args) -> dict:
    from accounts.services import api_key_create, integration_create
    from credits.models import Plan
    from credits.services import credits_grant, model_price_set, user_create

    Plan.objects.update_or_create(
        slug="bench-unlimited",
        defaults={
            "name": "Benchmark (no RPM limit)",
            "monthly_allowance": 0,
            "all_models": True,
            "requests_per_minute": 0,
            "default_max_tokens": 64,
            "active": True,
        },
    )
    for model in MODELS:
        model_price_set(
            model=model,
            input_weight=Decimal(args.input_weight),
            output_weight=Decimal(args.output_weight),
        )
    users = {}
    roles = [("load", HUGE), ("accounting", HUGE), ("overspend", args.small)]
    roles += [(f"load-{index}", HUGE) for index in range(1, args.load_users)]
    for role, amount in roles:
        user = user_create(email=f"{role}-{args.tag}@bench.invalid", plan_slug="bench-unlimited")
        credits_grant(user=user, amount=amount, idempotency_key=f"bench:{args.tag}:{role}")
        _key, raw = api_key_create(user=user, name="bench")
        users[role] = {"id": user.pk, "key": raw, "granted": amount, "email": user.email}
    # LibreChat's key: one for every user, who is named in X-LibreChat-User-Email.
    _integration, integration_key = integration_create(name=f"bench-{args.tag}")
    return {
        "users": users,
        "integration_key": integration_key,
        "input_weight": args.input_weight,
        "output_weight": args.output_weight,
    }


def ledger(args) -> dict:
    from django.db.models import Count, Sum

    from credits.models import Account, Hold, LedgerEntry

    result = {}
    for user_id in (int(part) for part in args.users.split(",")):
        account = Account.objects.get(pk=user_id)
        entries = LedgerEntry.objects.filter(account=account)
        usage = entries.filter(kind=LedgerEntry.Kind.USAGE).aggregate(
            total=Sum("amount"), count=Count("id")
        )
        result[str(user_id)] = {
            "balance": account.balance,
            "held": account.held,
            "debt": account.debt,
            "ledger_sum": entries.aggregate(total=Sum("amount"))["total"] or 0,
            "granted": entries.filter(kind=LedgerEntry.Kind.GRANT).aggregate(total=Sum("amount"))[
                "total"
            ]
            or 0,
            "usage_credits": -(usage["total"] or 0),
            "usage_entries": usage["count"],
            "flagged": entries.filter(flagged=True).count(),
            "open_holds": Hold.objects.filter(account=account, status=Hold.Status.OPEN).count(),
            "calls": _calls(user_id),
        }
    return result


def _calls(user_id: int) -> dict | None:
    """The proxy's call records, when the checkout under test has them."""
    try:
        from proxy.models import CallRecord
    except ImportError:
        return None
    from django.db.models import Count, Sum

    found = CallRecord.objects.filter(user_id=user_id)
    totals = found.aggregate(count=Count("id"), credits=Sum("credits"))
    reasons = dict(
        found.values_list("end_reason").annotate(n=Count("id")).values_list("end_reason", "n")
    )
    return {"count": totals["count"], "credits": totals["credits"] or 0, "end_reasons": reasons}


def stats(args) -> dict:
    """Database statements, transactions and Redis commands since the last `stats --reset`."""
    from django.conf import settings
    from django.db import connection

    found: dict = {"postgres": None, "redis": None}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            if args.reset:
                try:
                    cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                    cursor.execute("SELECT pg_stat_statements_reset()")
                except Exception as exc:  # not preloaded on this server: no statement counts
                    found["postgres"] = str(exc).strip()
            else:
                try:
                    cursor.execute(
                        "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 160), calls, mean_exec_time "
                        "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database "
                        "WHERE datname = current_database()) ORDER BY calls DESC, total_exec_time DESC"
                    )
                except Exception as exc:
                    found["postgres"] = str(exc).strip()
                else:
                    found["postgres"] = [
                        {"query": q, "calls": n, "mean_ms": float(ms)}
                        for q, n, ms in cursor.fetchall()
                    ]
    if "django_redis" in settings.CACHES["default"]["BACKEND"]:
        from django_redis import get_redis_connection

        redis = get_redis_connection("default")
        if args.reset:
            redis.config_resetstat()
        else:
            found["redis"] = {
                name.removeprefix("cmdstat_"): value["calls"]
                for name, value in redis.info("commandstats").items()
                if name not in ("cmdstat_config", "cmdstat_info")
            }
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    seeding = commands.add_parser("seed")
    seeding.add_argument("--tag", required=True)
    seeding.add_argument("--input-weight", default="0.37")
    seeding.add_argument("--output-weight", default="1.13")
    seeding.add_argument("--small", type=int, default=3000)
    seeding.add_argument("--load-users", type=int, default=1)
    reading = commands.add_parser("ledger")
    reading.add_argument("--users", required=True)
    counting = commands.add_parser("stats")
    counting.add_argument("--reset", action="store_true")
    args = parser.parse_args()

    sys.path[0] = os.getcwd()  # not this file's folder: the checkout under test
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "solaris.settings")
    import django

    django.setup()
    output = {"seed": seed, "ledger": ledger, "stats": stats}[args.command](args)
    print(json.dumps(output))


if __name__ == "__main__":
    main()
