"""Cycles are counted from an anchor, the moment the first cycle started, instead of from the
previous cycle's end (which drifted: Jan 31 → Feb 28 → Mar 28). A subscription that existed before
is anchored at its current cycle's start: the day it renews on today."""

from django.db import migrations, models
from django.db.models import F


def anchor_at_current_cycle(apps, schema_editor):
    Subscription = apps.get_model("credits", "Subscription")
    Subscription.objects.update(cycle_anchor=F("cycle_start"))


class Migration(migrations.Migration):
    dependencies = [("credits", "0006_default_plan")]

    operations = [
        migrations.AddField(
            model_name="subscription",
            name="cycle_anchor",
            field=models.DateTimeField(null=True, verbose_name="cycle anchor"),
        ),
        migrations.RunPython(anchor_at_current_cycle, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="subscription",
            name="cycle_anchor",
            field=models.DateTimeField(
                help_text="Each cycle starts on this day and time of the month (or the month's last day).",
                verbose_name="cycle anchor",
            ),
        ),
    ]
