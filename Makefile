# mats-lab: `make demo` installs and runs the main job on the embedded default;
# `make test` installs (if needed) and runs the test suite. CI runs `make test` (.ci/run).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STUDY ?= studies/keep_ratio.yaml

.PHONY: install demo test lint typecheck clean

install: $(VENV)/.installed

# Constraints pin the tested versions (torch 2.13.0: the CPU build where one is offered
# locally); pyproject.toml keeps ranges so GPU users can bring their own CUDA torch.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "setuptools<82" wheel -c constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

# The main job: the keep-ratio study (MATS keep ratios vs the VideoMAE baseline) on the
# embedded dataset, then its report under reports/local/ (ignored by git), compared with the
# committed reference under reports/. Re-running resumes the study.
demo: install
	$(BIN)/mats-lab demo --study $(STUDY) --out reports/local --reference reports

# Two pytest-xdist workers: on a 2-core machine the suite took 17 min with 2 workers, 20.5 with
# 4 and 23.4 in one process, run one after another (benchmarks/README.md, "Demo and test times"). TEST_WORKERS=0 runs
# it in one process (pytest's own output order, easier to follow when debugging one test).
TEST_WORKERS ?= 2
test: install
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

lint: install
	$(BIN)/ruff check mats_lab tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) work_dirs .pytest_cache .mypy_cache .ruff_cache
