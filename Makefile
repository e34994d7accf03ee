# Two set-up commands, each enough on a fresh machine: `make demo` and `make test`.
UV ?= $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PYTEST_ARGS ?=
# Let Python keep its bytecode caches (.pyc, in .venv and the ignored __pycache__ folders) even where
# the environment says not to (PYTHONDONTWRITEBYTECODE): without them every process compiles torch
# and the rest from source again before any work, 23 s to import edgekit's CLI on 2 cores against 8 s
# with them; the tests' spawned processes and every later command pay it.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup demo test bench-teacher clean

setup:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --locked

demo: setup
	bash android_demo/tools/check.sh build
	$(UV) run edgekit demo --runs runs/demo

# The phone core's JUnit tests and its host runner build first: the host-replay tests in pytest use them.
test: setup
	$(UV) run lint-imports
	bash android_demo/tools/check.sh
	$(UV) run pytest $(PYTEST_ARGS)

bench-teacher: setup
	$(UV) run python benchmarks/apnea_teacher.py

clean:
	rm -rf runs .pytest_cache
