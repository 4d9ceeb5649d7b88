VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run install migrate test test-sqlite test-postgres lint fmt bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: $(STAMP)
	$(BIN)/townsquare migrate

run: migrate
	$(BIN)/townsquare serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/mypy tests

fmt: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

# The two suites run side by side (`make test`), so each has Redis databases of its own.
TEST_REDIS ?= redis://127.0.0.1:6379

test-sqlite: $(STAMP)
	@echo "== test suite on SQLite =="
	TOWNSQUARE_TEST_DATABASE_URL= TOWNSQUARE_TEST_REDIS_URL=$(TEST_REDIS)/12 \
		TOWNSQUARE_TEST_RATELIMIT_REDIS_URL=$(TEST_REDIS)/13 $(BIN)/pytest

test-postgres: $(STAMP)
	@if [ -n "$$TOWNSQUARE_TEST_DATABASE_URL" ]; then \
		echo "== test suite on PostgreSQL =="; \
		TOWNSQUARE_TEST_REDIS_URL=$(TEST_REDIS)/14 TOWNSQUARE_TEST_SCALEOUT_REDIS_URL=$(TEST_REDIS)/10 \
		TOWNSQUARE_TEST_RATELIMIT_REDIS_URL=$(TEST_REDIS)/15 $(BIN)/pytest; \
	else \
		echo "TOWNSQUARE_TEST_DATABASE_URL is not set: PostgreSQL run skipped"; \
	fi

# Lint first; then both suites at once (two cores), each one's output printed when it ends.
test: lint
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-sqlite test-postgres

# Public CMS reads, Townsquare vs the raw floor server (PostgreSQL, wrk): see bench/README.md.
# Extra flags: make bench BENCH_ARGS="--repeat 3 --articles 1000000 --url ..."
bench: $(STAMP)
	$(BIN)/python bench/cms_public.py $(BENCH_ARGS)

# Multipart uploads (1/10/50 MiB PDFs, a 10 MiB JPEG), Townsquare vs a bare ASGI app writing
# to disk: MiB/s and peak RSS (PostgreSQL database townsquare_bench_media, dropped after).
# Extra flags: make bench-media BENCH_MEDIA_ARGS="--repeat 5 --clients 4 --profile 1"
.PHONY: bench-media
bench-media: $(STAMP)
	$(BIN)/python bench/media_upload.py $(BENCH_MEDIA_ARGS)

# Support chat send -> deliver: 1,000 WebSockets on one Townsquare process (250 conversations,
# 50 agents), 200 msg/s then flat out, vs a bare ASGI relay on asyncpg (PostgreSQL database
# townsquare_bench_chat, dropped after). Extra flags: make bench-chat BENCH_CHAT_ARGS="--rate 20,200"
.PHONY: bench-chat
bench-chat: $(STAMP)
	$(BIN)/python bench/chat_ws.py $(BENCH_CHAT_ARGS)

# Shift signups into one shift at 16 and 64 clients, Townsquare vs a bare ASGI app doing the
# conditional insert by hand on asyncpg, with the exactness check (confirmed == capacity);
# PostgreSQL database townsquare_bench_signups, dropped after.
# Extra flags: make bench-signups BENCH_SIGNUPS_ARGS="--signups 4000 --repeat 3 --clients 16,64"
.PHONY: bench-signups
bench-signups: $(STAMP)
	$(BIN)/python bench/event_signups.py $(BENCH_SIGNUPS_ARGS)
