"""Installed the fast path's PostgreSQL functions from strings here. Their SQL now lives in
credits/sql/ and migration 0005 loads it (docs/credits.md, "The SQL rule book"): on a fresh
database this migration does nothing and 0005 creates the functions; a database that ran the old
version of it gets them replaced, with the same definitions, by 0005."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("credits", "0002_ledger_append_only")]
    operations: list = []
