# Two set-up commands, each enough on a fresh machine: `make demo` and `make test`.
UV ?= $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PYTEST_ARGS ?=

.PHONY: setup demo test bench-teacher clean

setup:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --locked

demo: setup
	$(UV) run edgekit demo --out runs/demo

test: setup
	$(UV) run pytest $(PYTEST_ARGS)

bench-teacher: setup
	$(UV) run python benchmarks/apnea_teacher.py

clean:
	rm -rf runs .pytest_cache
