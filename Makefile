# monoz.link developer entry points. `make help` lists them.
#
# Everything runs from virtualenvs this Makefile creates: a fresh clone needs
# nothing installed by hand. Re-runs are fast: each venv is rebuilt only when
# its requirements files change (stamp files).
#
#   .venv           newest Python found (3.13, else 3.12): ansible-core 2.21,
#                   test + lint tools, emulator deps
#   .venv-2.19      Python 3.11: ansible-core 2.19 (oldest supported), test tools
#   .venv-importer  galaxy-importer (pins old attrs/flake8, so kept apart)

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules --no-print-directory

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VERSION := $(shell sed -n 's/^version: *//p' $(ROOT)/galaxy.yml)

# --- interpreters ------------------------------------------------------------
# $(call find_python,3.13): the newest real interpreter of that minor version,
# from pyenv's versions/*/bin first, then PATH. pyenv's shims are skipped where
# possible (for non-default versions they exit 127, e.g. inside ansible-test);
# a candidate only counts if it really is that version, and we keep the path it
# reports for itself (sys.executable), so even a working shim resolves to the
# real binary.
PYENV_ROOT ?= $(HOME)/.pyenv
define find_python
$(shell for p in $$(ls -d $(PYENV_ROOT)/versions/$(1).*/bin/python$(1) 2>/dev/null | sort -V -r) \
                 $$(type -a -P python$(1) 2>/dev/null | grep -v /shims/) \
                 $$(type -a -P python$(1) python3 2>/dev/null); do \
          "$$p" -c 'import sys; assert "%d.%d" % sys.version_info[:2] == "$(1)"; print(sys.executable)' 2>/dev/null && break; \
        done; true)
endef

ifeq ($(origin PY313),undefined)
PY313 := $(call find_python,3.13)
endif
ifeq ($(origin PY312),undefined)
PY312 := $(call find_python,3.12)
endif
ifeq ($(origin PY311),undefined)
PY311 := $(call find_python,3.11)
endif
PY_MAIN ?= $(or $(PY313),$(PY312))
MAIN_VER := $(if $(PY_MAIN),$(shell $(PY_MAIN) -c 'import sys; print("%d.%d" % sys.version_info[:2])'))

# Python versions ansible-test sanity/units run on. The main venv's version runs
# every sanity test; the others (ansible-core 2.21 on the other 3.1x, 2.19 on
# 3.11) run the tests whose result depends on the Python version.
SANITY_EXTRA_221 := $(filter-out $(MAIN_VER),$(if $(PY313),3.13) $(if $(PY312),3.12))
SANITY_VERSION_TESTS ?= --test compile --test import --test validate-modules

# --- paths -------------------------------------------------------------------
VENV          := $(ROOT)/.venv
VENV219       := $(ROOT)/.venv-2.19
VENV_IMPORTER := $(ROOT)/.venv-importer
BUILD         := $(ROOT)/build
# real interpreters as python3.X, put ahead of pyenv's shims for ansible-test
PYBIN         := $(BUILD)/pybin
# Ansible finds the collection through this symlink to the repo root
COLLECTIONS   := $(BUILD)/collections
COLL_LINK     := $(COLLECTIONS)/ansible_collections/monoz/link
# ansible-test needs the collection under a physical .../ansible_collections/
# path (it resolves the working directory, so the symlink does not do); it runs
# on the built tarball unpacked here, i.e. on exactly what ships.
AT_ROOT       := $(BUILD)/ansible-test/ansible_collections/monoz/link
DIST          := $(BUILD)/dist/monoz-link-$(VERSION).tar.gz

STAMP_MAIN     := $(VENV)/.stamp
STAMP_219      := $(VENV219)/.stamp
STAMP_IMPORTER := $(VENV_IMPORTER)/.stamp

REQ_MAIN     := requirements/ansible-2.21.txt requirements/test.txt requirements/lint.txt $(wildcard requirements/emulator.txt)
REQ_219      := requirements/ansible-2.19.txt requirements/test.txt $(wildcard requirements/emulator.txt)
REQ_IMPORTER := requirements/importer.txt

# Environment for every tool: the venv first, then the real interpreters, and
# the collection on the collections path. No ansible.cfg at the repo root: it
# would be picked up by anyone running ansible from a checkout, and shipped.
COMMON_ENV := ANSIBLE_COLLECTIONS_PATH=$(COLLECTIONS) \
	ANSIBLE_RETRY_FILES_ENABLED=false \
	PYTHONDONTWRITEBYTECODE=1
ENV_221 := env PATH="$(VENV)/bin:$(PYBIN):$$PATH" VIRTUAL_ENV=$(VENV) $(COMMON_ENV)
ENV_219 := env PATH="$(VENV219)/bin:$(PYBIN):$$PATH" VIRTUAL_ENV=$(VENV219) $(COMMON_ENV)

# pip on these machines warns about absent local index directories; hide that noise only
PIP_QUIET := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }

# pytest options for the e2e tests (e.g. make integration PYTEST_ARGS='-k retain -x')
PYTEST_ARGS ?=

# --- help --------------------------------------------------------------------
.PHONY: help
help:
	@cat <<'EOF'
	make demo         start the emulator, send example downlinks, show what the device got
	make test         every gate, fail-fast: lint sanity units integration molecule
	make lint         ansible-lint, changelog lint, docs lint, ansible-doc, galaxy build + importer
	make sanity       ansible-test sanity (--venv) on Python $(MAIN_VER) $(SANITY_EXTRA_221) (core 2.21) and 3.11 (core 2.19)
	make units        ansible-test units (--venv), core 2.21 on $(MAIN_VER) and core 2.19 on 3.11
	make integration  pytest tests/e2e (real ansible-playbook against the emulator), both venvs
	make molecule     molecule test --all (scenarios in extensions/molecule/)
	make bench        benchmarks (QUICK=1 for a short run)
	make chaos        the long fault-injection push
	make build        build the collection tarball into build/dist/
	make changelog    regenerate CHANGELOG.md from changelogs/ (release: make release)
	make venv         create/refresh all virtualenvs
	make clean        remove build outputs (keeps venvs); make distclean also removes venvs
	EOF
	@echo "interpreters: main=$(or $(PY_MAIN),NONE) 3.12=$(or $(PY312),none) 3.11=$(or $(PY311),NONE)"

# --- virtualenvs ---------------------------------------------------------------
.PHONY: venv
venv: $(STAMP_MAIN) $(STAMP_219) $(STAMP_IMPORTER) links

# $(call make_venv,python,venvdir,requirements...)
define make_venv
	test -n "$(1)" || { echo "ERROR: no suitable Python interpreter found for $(2) (see 'make help')" >&2; exit 1; }
	if ! "$(2)/bin/python" -c '' 2>/dev/null; then rm -rf "$(2)"; "$(1)" -m venv "$(2)"; fi
	"$(2)/bin/python" -m pip install -q --disable-pip-version-check $(addprefix -r ,$(3)) $(PIP_QUIET)
	"$(2)/bin/python" -m pip check
	touch "$@"
endef

$(STAMP_MAIN): $(REQ_MAIN)
	$(call make_venv,$(PY_MAIN),$(VENV),$(REQ_MAIN))

$(STAMP_219): $(REQ_219)
	$(call make_venv,$(PY311),$(VENV219),$(REQ_219))

$(STAMP_IMPORTER): $(REQ_IMPORTER)
	$(call make_venv,$(PY_MAIN),$(VENV_IMPORTER),$(REQ_IMPORTER))

# --- collection exposure ---------------------------------------------------------
.PHONY: links
links:
	mkdir -p "$(PYBIN)" "$(dir $(COLL_LINK))"
	for p in $(PY311) $(PY312) $(PY313); do
	  v=$$("$$p" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
	  ln -sfn "$$p" "$(PYBIN)/python$$v"
	done
	# relative, so the checkout can move
	ln -sfn ../../../.. "$(COLL_LINK)"

# --- build -----------------------------------------------------------------------
.PHONY: build
build: $(DIST)

# always rebuilt: cheap, and the tree is what counts
.PHONY: FORCE
FORCE:
$(DIST): FORCE | $(STAMP_MAIN)
	mkdir -p "$(dir $(DIST))"
	$(ENV_221) ansible-galaxy collection build --force --output-path "$(dir $(DIST))" "$(ROOT)" >/dev/null
	echo "built $(DIST)"

# ansible-test runs on the unpacked tarball (see AT_ROOT above)
.PHONY: ansible-test-tree
ansible-test-tree: $(DIST) $(STAMP_MAIN) $(STAMP_219) links
	rm -rf "$(AT_ROOT)"
	mkdir -p "$(AT_ROOT)"
	tar -xzf "$(DIST)" -C "$(AT_ROOT)"
	# its own git repo: otherwise ansible-test asks the enclosing checkout's git
	# for the file list, gets nothing (build/ is ignored) and skips every test
	cd "$(AT_ROOT)"
	git init -q .
	# untracked files count too: keep ansible-test's own output (its delegation
	# venvs live in tests/output/.tmp) out of the tests
	printf '/tests/output/\n/tests/integration/inventory\n' >> .git/info/exclude
	git add -A
	cd "$(ROOT)"
	# get-pip stand-ins: ansible-test --venv cannot download get-pip here
	"$(VENV)/bin/python" scripts/ansible-test-get-pip.py "$(VENV)/bin/python" "$(VENV219)/bin/python"

# --- gates -------------------------------------------------------------------------
# at LABEL CMD...: run one ansible-test invocation, carry on with the next one
# (so one run reports every failure), remember the failure. ansible-test exits 0
# with "All targets skipped" / "No tests found" when it finds nothing to test:
# that counts as a failure here.
define AT_FUNC
failed=0
at() {
  local label=$$1 t=$$SECONDS; shift
  echo "== ansible-test $$label"
  if ! "$$@" 2>&1 | tee "$(BUILD)/ansible-test.log"; then
    echo "FAILED: ansible-test $$label" >&2; failed=1
  elif grep -q -E "All targets skipped|No tests found" "$(BUILD)/ansible-test.log"; then
    echo "FAILED: ansible-test $$label found nothing to test" >&2; failed=1
  fi
  echo "== ansible-test $$label: $$((SECONDS - t)) s"
}
endef

.PHONY: sanity
sanity: ansible-test-tree
	cd "$(AT_ROOT)"
	$(AT_FUNC)
	at "sanity: core 2.21, Python $(MAIN_VER), all tests" \
	  $(ENV_221) ansible-test sanity --venv --python $(MAIN_VER) --color no
	for v in $(SANITY_EXTRA_221); do
	  at "sanity: core 2.21, Python $$v, $(SANITY_VERSION_TESTS)" \
	    $(ENV_221) ansible-test sanity --venv --python $$v --color no $(SANITY_VERSION_TESTS)
	done
	# the oldest core checks what differs between versions; the style tests
	# (pylint, pep8, yamllint...) already ran above, and CI has 20 minutes
	at "sanity: core 2.19, Python 3.11, $(SANITY_VERSION_TESTS)" \
	  $(ENV_219) ansible-test sanity --venv --python 3.11 --color no $(SANITY_VERSION_TESTS)
	exit $$failed

.PHONY: units
units: ansible-test-tree
	cd "$(AT_ROOT)"
	# ansible-test units passes when it finds no tests; we do not
	if ! find tests/unit -name 'test_*.py' 2>/dev/null | grep -q .; then
	  echo "ERROR: no unit tests (tests/unit/**/test_*.py) in the built collection" >&2; exit 1
	fi
	$(AT_FUNC)
	at "units: core 2.21, Python $(MAIN_VER)" \
	  $(ENV_221) ansible-test units --venv --python $(MAIN_VER) --color no
	at "units: core 2.19, Python 3.11" \
	  $(ENV_219) ansible-test units --venv --python 3.11 --color no
	exit $$failed

# step LABEL CMD...: run one check, carry on with the next, fail at the end
define STEP_FUNC
failed=0
step() {
  local label=$$1 t=$$SECONDS; shift
  echo "== $$label"
  if ! "$$@"; then echo "FAILED: $$label" >&2; failed=1; fi
  echo "== $$label: $$((SECONDS - t)) s"
}
endef

# End-to-end: real ansible-playbook runs against the emulator, driven by pytest
# (exit 5, "no tests collected", fails too). Both controllers run tests/e2e;
# the reliability suite (tests/reliability: chaos, crash, hostile input,
# secrets, TLS) exercises the module rather than ansible-core and runs once.
E2E_PATHS_221 ?= $(wildcard tests/e2e tests/reliability emulator/tests)
E2E_PATHS_219 ?= $(wildcard tests/e2e)
.PHONY: integration
integration: $(STAMP_MAIN) $(STAMP_219) links
	test -d tests/e2e || { echo "ERROR: tests/e2e does not exist" >&2; exit 1; }
	$(STEP_FUNC)
	step "pytest $(E2E_PATHS_221): ansible-core 2.21, Python $(MAIN_VER)" \
	  $(ENV_221) PYTHONPATH="$(ROOT)/emulator" "$(VENV)/bin/python" -m pytest $(E2E_PATHS_221) $(PYTEST_ARGS)
	step "pytest $(E2E_PATHS_219): ansible-core 2.19, Python 3.11" \
	  $(ENV_219) PYTHONPATH="$(ROOT)/emulator" "$(VENV219)/bin/python" -m pytest $(E2E_PATHS_219) -p no:cacheprovider $(PYTEST_ARGS)
	exit $$failed

.PHONY: lint
lint: $(DIST) $(STAMP_MAIN) $(STAMP_IMPORTER) links
	$(STEP_FUNC)
	step "ansible-lint (production profile, .ansible-lint)" $(ENV_221) ansible-lint
	step "antsibull-changelog lint" $(ENV_221) antsibull-changelog lint
	step "antsibull-docs lint-collection-docs" \
	  $(ENV_221) antsibull-docs lint-collection-docs --plugin-docs \
	    --validate-collection-refs dependent --disallow-unknown-collection-refs "$(COLL_LINK)"
	step "ansible-doc renders every module, plugin and role" \
	  $(ENV_221) "$(VENV)/bin/python" scripts/check-ansible-doc.py
	step "galaxy-importer on $(notdir $(DIST))" \
	  "$(VENV_IMPORTER)/bin/python" scripts/galaxy-importer-check.py "$(DIST)"
	exit $$failed

.PHONY: molecule
molecule: $(STAMP_MAIN) links
	scenarios=$$(ls extensions/molecule/*/molecule.yml 2>/dev/null || true)
	roles=$$(ls -d roles/*/ 2>/dev/null || true)
	if [ -z "$$scenarios" ]; then
	  if [ -n "$$roles" ]; then
	    echo "ERROR: roles exist ($$roles) but extensions/molecule/ has no scenario" >&2; exit 1
	  fi
	  echo "******** SKIPPED: no roles and no molecule scenarios yet (extensions/molecule/<name>/molecule.yml) ********"
	  exit 0
	fi
	$(ENV_221) MOLECULE_COLLECTIONS_PATH="$(COLLECTIONS)" molecule test --all

# --- demo, benchmarks --------------------------------------------------------------
DEMO_SCRIPT  ?= $(firstword $(wildcard demo/run_demo.py docs/examples/run_demo.py) demo/run_demo.py)
BENCH_SCRIPT ?= bench/run_bench.py
CHAOS_SCRIPT ?= tests/reliability/chaos_push.py
STAMP_BENCH  := $(VENV)/.stamp-bench

# benchmark-only tools (matplotlib, py-spy, ...) go into the main venv on demand,
# so make test never pays for them
$(STAMP_BENCH): requirements/bench.txt $(STAMP_MAIN)
	"$(VENV)/bin/python" -m pip install -q --disable-pip-version-check $(addprefix -r ,$(REQ_MAIN) requirements/bench.txt) $(PIP_QUIET)
	"$(VENV)/bin/python" -m pip check
	touch "$@"

.PHONY: demo
demo: $(STAMP_MAIN) links
	test -f "$(DEMO_SCRIPT)" || { echo "ERROR: $(DEMO_SCRIPT) does not exist yet" >&2; exit 1; }
	$(ENV_221) PYTHONPATH="$(ROOT)/emulator" "$(VENV)/bin/python" "$(DEMO_SCRIPT)"

.PHONY: bench
bench: $(STAMP_BENCH) links
	test -f "$(BENCH_SCRIPT)" || { echo "ERROR: $(BENCH_SCRIPT) does not exist yet" >&2; exit 1; }
	$(ENV_221) PYTHONPATH="$(ROOT)/emulator" "$(VENV)/bin/python" "$(BENCH_SCRIPT)" $(if $(QUICK),--quick)

.PHONY: chaos
chaos: $(STAMP_MAIN) links
	test -f "$(CHAOS_SCRIPT)" || { echo "ERROR: $(CHAOS_SCRIPT) does not exist yet" >&2; exit 1; }
	$(ENV_221) PYTHONPATH="$(ROOT)/emulator" "$(VENV)/bin/python" "$(CHAOS_SCRIPT)" --devices 20000

# --- the whole suite -------------------------------------------------------------
.PHONY: test
test:
	total=$$SECONDS
	for gate in lint sanity units integration molecule; do
	  start=$$SECONDS
	  echo "######## make $$gate"
	  $(MAKE) -f "$(ROOT)/Makefile" $$gate
	  echo "######## make $$gate: passed in $$((SECONDS - start)) s"
	done
	echo "######## make test: all gates passed in $$((SECONDS - total)) s"

# --- changelog / release -----------------------------------------------------------
.PHONY: changelog
changelog: $(STAMP_MAIN)
	$(ENV_221) antsibull-changelog generate

# make release: fold changelogs/fragments into changelog.yaml for galaxy.yml's version
.PHONY: release
release: $(STAMP_MAIN)
	$(ENV_221) antsibull-changelog release --version $(VERSION)

# --- cleaning ----------------------------------------------------------------------
.PHONY: clean
clean:
	rm -rf "$(BUILD)" tests/output tests/integration/inventory .pytest_cache .hypothesis .ansible importer_result.json
	find . -path ./.git -prune -o -path './.venv*' -prune -o -type d -name __pycache__ -print0 | xargs -0r rm -rf

.PHONY: distclean
distclean: clean
	rm -rf "$(VENV)" "$(VENV219)" "$(VENV_IMPORTER)"
