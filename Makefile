# The two commands of the README, plus the worker. Everything runs from .venv, created on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT
PYTEST_ARGS ?= -n 2

.PHONY: run test worker beat bench soak clean messages

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

# axe-core for the browser tests' accessibility check (tests/e2e/axe.py), pinned by package-lock.json, from the npm
# registry into node_modules/ (git-ignored; nothing of it is served).
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# A random SECRET_KEY for this checkout, made once (the settings read it when SECRET_KEY is unset; with DEBUG off
# they refuse to start without a real key). Owner-only, under var/ (never committed, never in an image).
var/secret_key:
	mkdir -p var
	umask 077 && $(PY) -c 'import secrets; print(secrets.token_urlsafe(50))' > $@.tmp && mv $@.tmp $@

run: $(VENV)/.runtime var/secret_key
	mkdir -p var
	$(BIN)/python -m livechat.catalogues
	$(BIN)/python manage.py migrate --noinput -v 0
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py banner
	exec $(BIN)/python -m livechat.server --host $(HOST) --port $(PORT)  # the server and its options: livechat/server.py

# The browser tests run in a pytest process of their own: Playwright's sync API keeps an event loop running
# in its process, where the other tests' asyncio.run() cannot start one. The fault tests (tests/faults) run on their
# own too: they start and stop private PostgreSQL clusters, Redis servers and web processes, and beside the in-process
# socket tests they made both sides' timing checks fail (4429 not seen within its seconds) under the shared load.
# Lint (ruff.toml) and "no model change without its migration" fail the run too, but do not keep the tests from running.
# The migration check compares models with migrations on the embedded database: the test run's DATABASE_URL names a
# database that only its test copies exist of.
test: $(VENV)/.dev var/secret_key node_modules/.installed
	$(BIN)/python -m livechat.catalogues
	status=0; \
	$(BIN)/ruff check . || status=1; \
	env -u DATABASE_URL $(BIN)/python manage.py makemigrations --check --dry-run || status=1; \
	$(BIN)/python -m pytest $(PYTEST_ARGS) --ignore=tests/e2e --ignore=tests/faults || status=1; \
	$(BIN)/python -m pytest $(PYTEST_ARGS) tests/faults || status=1; \
	$(BIN)/python -m pytest $(PYTEST_ARGS) tests/e2e || status=1; \
	exit $$status

$(VENV)/.bench: requirements-bench.txt $(VENV)/.dev
	$(BIN)/pip install -q -r requirements-bench.txt
	touch $@

# Benchmarks and the soak run by hand (not in CI); they raise the open-file limit their sockets need.
bench: $(VENV)/.bench var/secret_key
	ulimit -n 65536 2>/dev/null || ulimit -n $$(ulimit -Hn); $(BIN)/python -m bench.run $(BENCH_ARGS)

soak: $(VENV)/.bench var/secret_key
	ulimit -n 65536 2>/dev/null || ulimit -n $$(ulimit -Hn); $(BIN)/python -m bench.soak $(SOAK_ARGS)

worker: $(VENV)/.runtime var/secret_key
	exec $(BIN)/celery -A livechat worker -l info --concurrency 2

# The clock of the periodic tasks (exactly one per deployment, beside the workers): routing's idle close every minute,
# webhook retries every 30 s, retention every night at 03:00 UTC (CELERY_BEAT_SCHEDULE).
beat: $(VENV)/.runtime var/secret_key
	mkdir -p var
	exec $(BIN)/celery -A livechat beat -l info --schedule var/celerybeat-schedule

clean:
	rm -rf var

# Gather the strings to translate into locale/<lang>/LC_MESSAGES/*.po (needs gettext: apt install gettext). Then
# translate the new entries; `make run`/`make test` compile the catalogues. The README says how to add a language.
IGNORE := --ignore=node_modules --ignore=var --ignore=media --ignore=docs --ignore=bench
messages: $(VENV)/.dev
	$(BIN)/python manage.py makemessages --all --no-location --no-obsolete $(IGNORE)
	$(BIN)/python manage.py makemessages --all --no-location --no-obsolete -d djangojs $(IGNORE) --ignore=widget
