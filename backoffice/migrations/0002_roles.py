from django.db import migrations


def create_roles(apps, schema_editor):
    from backoffice.roles import roles_sync

    roles_sync(apps=apps)


class Migration(migrations.Migration):
    """The staff groups 'Financeiro' and 'Suporte' (docs/admin.md, "Roles")."""

    dependencies = [
        ("backoffice", "0001_initial"),
        ("accounts", "0001_initial"),
        ("credits", "0002_ledger_append_only"),
        ("proxy", "0001_initial"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
