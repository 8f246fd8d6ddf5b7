#!/usr/bin/env bash
# The platform as a Django team adds it: build the distribution, install the
# wheel (not this source tree) into a fresh virtualenv, start a new project
# with `django-admin startproject`, make exactly the edits the README shows
# (its `host-edit` blocks), migrate, drive simulated calls through the new
# host under Uvicorn and Daphne, and check its rows and admin pages.
#
#   bash tests/host/run.sh [WORKDIR]     (make test-host)
set -euo pipefail
cd "$(dirname "$0")/../.."
SOURCE=$PWD
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
BUILD_PY=${BUILD_PY:-$SOURCE/.venv/bin/python}
WORK=${1:-$(mktemp -d -t callbridge-host-XXXXXX)}
mkdir -p "$WORK"
echo "host check in $WORK"

echo "-- build: wheel and sdist, twine check --strict"
rm -rf "$WORK/dist"
"$BUILD_PY" -m build --outdir "$WORK/dist" "$SOURCE" >"$WORK/build.log" 2>&1 \
    || { tail -30 "$WORK/build.log"; exit 1; }
"$BUILD_PY" -m twine check --strict "$WORK"/dist/*
WHEEL=$(ls "$WORK"/dist/django_callbridge-*.whl)

echo "-- a fresh virtualenv with the wheel (the versions CI pins, as constraints)"
rm -rf "$WORK/venv" "$WORK/mysite"
"$PYTHON" -m venv "$WORK/venv"
VENV_PY=$WORK/venv/bin/python
sed 's/\[[^]]*\]//' "$SOURCE/requirements.txt" >"$WORK/constraints.txt" # no extras there
"$VENV_PY" -m pip install --quiet --disable-pip-version-check \
    -c "$WORK/constraints.txt" "${WHEEL}[simulators]" >"$WORK/pip.log" 2>&1 \
    || { grep -v "^WARNING: Location" "$WORK/pip.log" | tail -30; exit 1; }

echo "-- django-admin startproject mysite, and the README's edits"
cd "$WORK"
"$WORK/venv/bin/django-admin" startproject mysite
cd "$WORK/mysite"
"$VENV_PY" "$SOURCE/tests/host/readme_edits.py" "$SOURCE/README.md" .

# What the documented settings read from the environment (the stand-ins' values:
# the stack gives its server the same).
export TWILIO_AUTH_TOKEN=simulated-twilio-auth-token OPENAI_API_KEY=sk-simulated
# Nothing of the source tree may be importable from here.
unset PYTHONPATH DJANGO_SETTINGS_MODULE DATABASE_URL REDIS_URL

"$VENV_PY" manage.py check --fail-level WARNING
"$VENV_PY" manage.py migrate --no-input --verbosity 0

echo "-- simulated calls through the host: Uvicorn, then Daphne"
export DJANGO_SETTINGS_MODULE=mysite.settings_standins
"$VENV_PY" manage.py simulate_call --server uvicorn \
    --scenario barge_in_tail --scenario goodbye_drain \
    --scenario tool_order_status --scenario transfer_billing | tee "$WORK/uvicorn.txt"
"$VENV_PY" manage.py simulate_call --server daphne \
    --scenario barge_in_second_item | tee "$WORK/daphne.txt"

echo "-- the host's rows and admin pages"
unset DJANGO_SETTINGS_MODULE
"$VENV_PY" "$SOURCE/tests/host/check_host.py" "$SOURCE"
echo "host check passed in ${SECONDS} s"
