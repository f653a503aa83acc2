#!/usr/bin/env bash
# Refresh the pt-BR catalogs of the named apps, then compile them: bash scripts/messages.sh portal
# An app's catalog holds the strings of its own code; portal's also holds the project templates
# people read (templates/*.html, templates/portal, templates/registration). Translate what is new
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
  if [ "$app" = portal ]; then
    # The templates have no app of their own: run from the root, leaving out every other app,
    # the staff templates (backoffice's catalog) and the e-mails (one template per language).
    others=()
    for dir in */; do
      dir=${dir%/}
      [ "$dir" = portal ] || [ "$dir" = templates ] || others+=(--ignore="$dir")
    done
    "$ADMIN" makemessages -l pt_BR --no-obsolete "${others[@]}" --ignore=.venv \
      --ignore=.litellm-venv --ignore=templates/backoffice --ignore=templates/admin \
      --ignore=templates/emails
  else
    (cd "$app" && "$ADMIN" makemessages -l pt_BR --no-obsolete)
  fi
  (cd "$app" && "$ADMIN" compilemessages -l pt_BR)
  msgfmt --statistics -o /dev/null "$app/locale/pt_BR/LC_MESSAGES/django.po"
done
