# The two commands of the README's quick start: `make dev` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test test-fast lint chromium clean deploy-files package bench readme-screenshot \
	screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip<26.3"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# `make dev PORT=9000 VERBOSE=1`: another port; the embedded backend's request log too.
dev: $(STAMP)
	@$(BIN)/apim-users dev $(if $(PORT),--port $(PORT),) $(if $(VERBOSE),--verbose,)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Every tier, on two workers that take tests from each other's queue when theirs runs out
# (worksteal): with xdist's default, one worker was handed every browser walk and the other sat
# idle for the last 90 s of a 146 s run.
test: lint chromium
	$(BIN)/python -m pytest -n 2 --dist worksteal $(PYTEST_ARGS)

# The fast tier: unit tests, services on fakes, the store contract, the in-process API (on the
# fakes; tests marked `moto` on moto); no live stack, no browser, no packaging.
FAST_TESTS := tests/unit tests/services tests/contract_store tests/api
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist worksteal -m "not integration" $(FAST_TESTS) $(PYTEST_ARGS)

# Debian's chromium-headless-shell for the browser tests (tests/browser): chromium's headless build,
# the one Playwright (a dev dependency from PyPI) runs headless tests in; it launches Debian's
# and never downloads a browser of its own. It spends about half the CPU of the full chromium per
# page. apt installs it when it is missing (with sudo when not root and sudo exists). If apt
# fails, the tests use Debian's full chromium when it is there, and otherwise fail saying why.
chromium:
	@command -v chromium-headless-shell >/dev/null 2>&1 || { \
		if [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; else SUDO=; fi; \
		echo "Installing Debian's chromium-headless-shell for the browser tests (apt-get)..."; \
		{ $$SUDO apt-get update -qq && \
		  $$SUDO env DEBIAN_FRONTEND=noninteractive \
		    apt-get install -y -qq chromium-headless-shell >/dev/null; } || \
		echo "WARNING: chromium-headless-shell could not be installed; the browser tests use" \
			"Debian's chromium if it is installed, and fail otherwise."; }

# The generated deployment files (tests/deploy/stack.py): the prod stage's merge template and IAM
# policy in .chalice/, and requirements.txt. Run after changing a model, a function or pyproject.
deploy-files: $(STAMP)
	$(BIN)/python -m tests.deploy.stack --write

# The prod stage as CloudFormation: build/package/sam.json + deployment.zip (README: Deploy).
# chalice package builds both; tests.deploy.bytecode then adds unchecked-hash .pyc files to the
# zip, which chalice ships without, so that cold starts do not compile (docs/performance.md).
package: $(STAMP)
	$(BIN)/python -m tests.deploy.stack --check
	rm -rf build/package
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(BIN)/chalice package --stage prod \
		--merge-template .chalice/prod-resources.json build/package
	$(BIN)/python -m tests.deploy.bytecode build/package
	$(BIN)/cfn-lint build/package/sam.json

# Measurements, not tests (bench/): prints a table, writes bench/results.json; docs/performance.md.
bench: $(STAMP)
	$(BIN)/python -m bench

# The browser walks, saving a screenshot of each page they check in build/screenshots/ (`make test`
# takes none: they are pictures for people, and cost chromium about 0.2 s each).
screenshots: $(STAMP) chromium
	SCREENSHOTS=1 $(BIN)/python -m pytest -q -n 2 --dist worksteal tests/browser

# The README's picture of the developer portal (tests/browser/test_readme_screenshot.py).
readme-screenshot: $(STAMP) chromium
	$(BIN)/python -m pytest -q tests/browser/test_readme_screenshot.py
	cp build/screenshots/portal.png docs/portal.png

clean:
	rm -rf $(VENV)
