# `make run` and `make test` are all a newcomer needs; both create .venv on first use.
SHELL := /bin/bash
PORT ?= 8000
# Worker processes for `make run`: one per core (each runs torch on its share of the cores).
WORKERS ?= $(shell python3 -c "import os; print(len(os.sched_getaffinity(0)))" 2>/dev/null || echo 2)
VENV := .venv
PY := $(VENV)/bin/python
# Touched after a successful install, so pip only runs again when a requirements file changes.
STAMP := $(VENV)/.installed
# The second test pass: the integration tests again on real servers (CI provides both).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-services chromium redis-server migrate bench bench-web

$(STAMP): requirements/base.txt requirements/prod.txt requirements/dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements/dev.txt
	touch $@

migrate: $(STAMP)
	$(PY) manage.py migrate --no-input

# Web server and Celery worker (with its beat scheduler) together; Ctrl-C stops both. The
# development settings: debugging on, a public secret key (servers default to production).
run migrate: export DJANGO_SETTINGS_MODULE ?= colorizer_site.settings.dev
run: migrate
	@echo "Colorizer is starting at http://127.0.0.1:$(PORT)/ (Ctrl-C stops the web server and the worker)"
	@trap 'kill $$worker 2>/dev/null; wait $$worker' EXIT; \
	$(VENV)/bin/celery -A colorizer_site worker --beat --concurrency=$(WORKERS) --loglevel=info & worker=$$!; \
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

# Speed of a running stack (`make run` in another terminal, or BENCH_URL=...): uploads photos
# through the API and prints photos/s, job times and the worker's peak memory.
BENCH_URL ?= http://127.0.0.1:$(PORT)
BENCH_ARGS ?= --photos 40 --megapixels 1
bench: $(STAMP)
	$(PY) manage.py bench_stack --url $(BENCH_URL) $(BENCH_ARGS)

# Requests/s and latency of the same stack's job polling and photo list at 50 clients; reads the
# photos `make bench BENCH_ARGS=--keep` leaves.
BENCH_WEB_ARGS ?= --clients 50 --seconds 15
bench-web: $(STAMP)
	$(PY) manage.py bench_web --url $(BENCH_URL) $(BENCH_WEB_ARGS)

# Debian's Chromium drives the browser tests (Playwright's own download is not used).
chromium:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }

# The fault tests (tests/deploy/test_faults.py) start, pause and stop a redis-server of their own.
redis-server:
	@command -v redis-server >/dev/null || { $(SUDO) apt-get update && $(SUDO) apt-get install -y redis-server; }

# `docker compose config` checks docker/compose.yml (tests/deploy/test_docker.py); it needs
# the Compose CLI but no Docker engine. Debian's docker-compose when neither CLI is there.
.PHONY: compose-cli
compose-cli:
	@docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null || \
	{ $(SUDO) apt-get update && $(SUDO) apt-get install -y docker-compose; }

# Everything on the embedded defaults (SQLite, filesystem broker), then the integration tests
# again on PostgreSQL and Redis.
test: $(STAMP) chromium compose-cli
	$(PY) -m pytest
	$(MAKE) --no-print-directory test-services

test-services: $(STAMP) chromium redis-server
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest -m services
