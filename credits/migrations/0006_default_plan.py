"""A fresh database gets the default plan "padrao" (every priced model, no allowance, 60 calls a
minute), so a user created right after `migrate` and granted credits can chat. Nothing is created
when a plan is already the default."""

from django.db import migrations


def default_plan(apps, schema_editor):
    from credits.services.plans import plan_default_ensure

    plan_default_ensure(apps=apps)


class Migration(migrations.Migration):
    dependencies = [("credits", "0005_sql_rule_book")]
    operations = [migrations.RunPython(default_plan, migrations.RunPython.noop)]
