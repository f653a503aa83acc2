"""The fast path's PostgreSQL functions, from credits/sql/ (the rules, then the holds using them)."""

from django.db import migrations

from credits.sql import sql_install


class Migration(migrations.Migration):
    dependencies = [("credits", "0004_purchase_online_not_confirmed_by_hand")]
    operations = [sql_install("rules.v1", "holds.v1")]
