# chatserver — `make serve` runs the server, `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Two install stamps: `make serve` installs the runtime dependencies only
# (`pip install -e .`), `make test` adds the test extras (`pip install -e '.[test]'`).
# The test install includes the runtime one and renews its stamp too, so `make serve`
# after `make test` installs nothing.
RUNTIME_STAMP := $(VENV)/.installed-runtime
TEST_STAMP    := $(VENV)/.installed-test

# A skipped test fails the run on CI (CI=true; `make pytest NO_SKIP=1` does the same
# locally): CI installs every tool the suite uses. See .ci/no_skip.py.
NO_SKIP ?= $(if $(filter true True TRUE 1 yes,$(CI)),1)
PYTEST_NO_SKIP := $(if $(NO_SKIP),PYTHONPATH=$(CURDIR)/.ci$${PYTHONPATH:+:$$PYTHONPATH})
# Two pytest-xdist workers (one per core of the CI machine), a test file per worker at a
# time so module fixtures are made once; `make pytest JOBS=0` runs in one process.
JOBS ?= 2
PYTEST_FLAGS   := -q -rs $(if $(NO_SKIP),-p no_skip) $(if $(filter 0,$(JOBS)),,-n $(JOBS) --dist loadfile)

.PHONY: serve test check lint typecheck pytest system-deps bench clean

define make-venv
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
endef

$(RUNTIME_STAMP): pyproject.toml setup.py
	$(make-venv)
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(TEST_STAMP): pyproject.toml setup.py
	$(make-venv)
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@ $(RUNTIME_STAMP)

serve: $(RUNTIME_STAMP)
	$(BIN)/chatserver serve $(ARGS)

# Debian packages the suite needs (CI runs this too), installed only when missing:
# chromium (browser e2e tests), redis-server (multi-node tests), nginx (`nginx -t` of
# deploy/nginx), nodejs (`node --check` of the minified widget), npm (Debian's nodejs
# lacks it: `make widget` and the test that rebuilds the widget with terser), systemd
# (`systemd-analyze verify` of deploy/*.service), openssl (a test certificate),
# tzdata (Europe/Zurich business hours), python3-venv (the .venv itself), iproute2
# (`ip netns`: tests/multihost/test_netns.py), postgresql-client (pg_dump/pg_restore of
# `chatserver backup` and tests/store/test_backup_restore.py).
system-deps:
	@need=""; \
	test -x /usr/bin/chromium || need="$$need chromium"; \
	command -v redis-server >/dev/null || need="$$need redis-server"; \
	command -v nginx >/dev/null || test -x /usr/sbin/nginx || need="$$need nginx"; \
	command -v node >/dev/null || need="$$need nodejs"; \
	command -v npm >/dev/null || need="$$need npm"; \
	command -v systemd-analyze >/dev/null || need="$$need systemd"; \
	command -v openssl >/dev/null || need="$$need openssl"; \
	test -e /usr/share/zoneinfo/Europe/Zurich || need="$$need tzdata"; \
	command -v ip >/dev/null || need="$$need iproute2"; \
	{ command -v pg_dump && command -v pg_restore; } >/dev/null || need="$$need postgresql-client"; \
	$(PYTHON) -c 'import ensurepip' 2>/dev/null || need="$$need python3-venv"; \
	if [ -n "$$need" ]; then \
	  echo "installing Debian packages:$$need"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$need; \
	fi

test: system-deps $(TEST_STAMP) pytest check

pytest: $(TEST_STAMP)
	$(PYTEST_NO_SKIP) $(BIN)/pytest $(PYTEST_FLAGS)

check: lint typecheck

lint: $(TEST_STAMP)
	$(BIN)/ruff check chatserver tests bench .ci

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

# Every loadgen scenario once, 50 pairs x 200 messages at 20 msg/s (docs/benchmarks.md).
bench: $(TEST_STAMP)
	$(BIN)/python bench/loadgen.py

# Mutation testing of the pure core (docs/testing.md): mutmut mutates the modules listed
# under [tool.mutmut] in pyproject.toml and runs their unit tests against each mutant, two
# at a time. One module: make mutation MUTANTS='chatserver.chat.routing*'. Results stay in
# mutants/ (git-ignored): `.venv/bin/mutmut results`, `.venv/bin/mutmut show NAME`.
MUTATION_STAMP := $(VENV)/.installed-mutation
MUTANTS ?=
.PHONY: mutation

$(MUTATION_STAMP): pyproject.toml
	$(make-venv)
	$(BIN)/python -m pip install -q -e '.[test,mutation]'
	@touch $@ $(TEST_STAMP) $(RUNTIME_STAMP)

mutation: $(MUTATION_STAMP)
	$(BIN)/mutmut run --max-children 2 $(MUTANTS)
	$(BIN)/python .ci/mutation_score.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The widget as served (docs/operations.md): widget/dist/widget.min.js, checked in, is
# widget.js minified with terser (pinned in widget/package-lock.json). Run after every
# edit of widget.js: until then the server serves widget.js minified with rjsmin (larger)
# and logs a warning.
.PHONY: widget
widget:
	cd widget && npm ci --no-audit --no-fund --loglevel=error && node build.mjs

# The server's gettext catalogs (chatserver/i18n/locale, docs/i18n.md): extract the
# messages from the source (babel.cfg), merge them into every language's .po, and
# compile each .po (a check: the server compiles them in memory at run time).
.PHONY: catalogs
catalogs: $(TEST_STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ --no-location --sort-output \
		--project=chatserver -o chatserver/i18n/locale/chatserver.pot .
	$(BIN)/pybabel update -i chatserver/i18n/locale/chatserver.pot \
		-d chatserver/i18n/locale -D chatserver --width=100 --ignore-obsolete
	@for lang in de fr it en; do \
		$(BIN)/pybabel compile -D chatserver --statistics \
			-i chatserver/i18n/locale/$$lang/LC_MESSAGES/chatserver.po \
			-o $(or $(TMPDIR),/tmp)/chatserver-$$lang.mo || exit 1; \
	done
