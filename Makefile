# Gavel: every target creates the virtualenv and installs the pinned dependencies first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: demo demo-postgres test lint serve bench install migrate clean requirements

# The compiled file pins every package the project needs, hashed: pip installs exactly those
# (--no-deps) instead of resolving again, which in hash-checking mode fails as soon as a newer
# release of a package asked for with an extra (pytest-cov's coverage[toml]) is published.
$(STAMP): requirements/dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
		-r requirements/dev.txt
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	DJANGO_SETTINGS_MODULE=gavel.settings.demo $(BIN)/python -m gavel.demo

# The same story on PostgreSQL (database gavel_demo, dropped and created), with the legacy import.
demo-postgres: $(STAMP)
	DJANGO_SETTINGS_MODULE=gavel.settings.demo \
	DEMO_DATABASE_URL=$${DEMO_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/gavel_demo} \
	$(BIN)/python -m gavel.demo

test: $(STAMP)
	$(BIN)/pytest --cov --cov-report=term --cov-report=xml:var/coverage.xml -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy gavel stripe_sandbox benchmarks
	DJANGO_SETTINGS_MODULE=gavel.settings.local $(BIN)/python manage.py makemigrations --check --dry-run

serve: $(STAMP)
	bash scripts/serve.sh

bench: $(STAMP)
	$(BIN)/python -m benchmarks

migrate: $(STAMP)
	$(BIN)/python manage.py migrate

# Re-pin after editing pyproject.toml (needs network access to the package index).
requirements:
	$(PYTHON) -m pip install --quiet uv
	$(PYTHON) -m uv pip compile pyproject.toml --python-version 3.11 --generate-hashes --no-header -o requirements/base.txt
	$(PYTHON) -m uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes --no-header -o requirements/dev.txt

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .coverage*
