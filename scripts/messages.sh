#!/usr/bin/env bash
# Refresh the pt-BR catalogs of the named apps, then compile them: bash scripts/messages.sh portal
# An app's catalog holds the strings of its own code; portal's also holds the project templates
# people read (templates/*.html, templates/portal, templates/registration), backoffice's the staff
# templates (templates/admin, templates/backoffice). Translate what is new
# (msgstr "") or fuzzy in <app>/locale/pt_BR/LC_MESSAGES/django.po, then run this again.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ADMIN=$ROOT/.venv/bin/django-admin
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for app in "$@"; do
  mkdir -p "$app/locale/pt_BR/LC_MESSAGES"
  # makemessages writes strings found outside any app's locale/ to LOCALE_PATHS[0] (and creates
  # it): point it at this app's catalog, so nothing lands in a stray ./locale.
  printf 'from solaris.settings import *  # noqa: F403\nLOCALE_PATHS = ["%s/%s/locale"]\n' \
    "$ROOT" "$app" >"$TMP/messages_settings.py"
  export PYTHONPATH="$TMP:$ROOT" DJANGO_SETTINGS_MODULE=messages_settings
  if [ "$app" = portal ] || [ "$app" = backoffice ]; then
    # The templates have no app of their own: run from the root, leaving out every other app.
    # The staff templates (templates/admin, templates/backoffice) are backoffice's, the others
    # portal's; the e-mails have one template per language.
    others=()
    for dir in */; do
      dir=${dir%/}
      [ "$dir" = "$app" ] || [ "$dir" = templates ] || others+=(--ignore="$dir")
    done
    if [ "$app" = portal ]; then
      others+=(--ignore=templates/backoffice --ignore=templates/admin)
    else
      for dir in templates/*/; do
        dir=${dir%/}
        [ "$dir" = templates/admin ] || [ "$dir" = templates/backoffice ] || others+=(--ignore="$dir")
      done
      for file in templates/*.html; do others+=(--ignore="$file"); done
    fi
    "$ADMIN" makemessages -l pt_BR --no-obsolete "${others[@]}" --ignore=.venv \
      --ignore=.litellm-venv --ignore=templates/emails
  else
    (cd "$app" && "$ADMIN" makemessages -l pt_BR --no-obsolete)
  fi
  (cd "$app" && "$ADMIN" compilemessages -l pt_BR)
  msgfmt --statistics -o /dev/null "$app/locale/pt_BR/LC_MESSAGES/django.po"
done
