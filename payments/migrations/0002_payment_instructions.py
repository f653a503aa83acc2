from django.db import migrations, models


def instructions_row(apps, schema_editor):
    """The one row finance edits (blank: the generic note is shown)."""
    apps.get_model("payments", "PaymentInstructions").objects.get_or_create(pk=1)


class Migration(migrations.Migration):

    dependencies = [
        ('payments', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='PaymentInstructions',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('text_pt_br', models.TextField(blank=True, help_text='E.g. the PIX key or bank account, the amount to pay and where to send the receipt.', verbose_name='instructions (Portuguese)')),
                ('text_en', models.TextField(blank=True, help_text='For people who read Solaris in English; blank shows the Portuguese text.', verbose_name='instructions (English)')),
                ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated at')),
            ],
            options={
                'verbose_name': 'payment instructions',
                'verbose_name_plural': 'payment instructions',
                'constraints': [models.CheckConstraint(condition=models.Q(('id', 1)), name='payment_instructions_singleton')],
            },
        ),
        migrations.RunPython(instructions_row, migrations.RunPython.noop),
    ]
