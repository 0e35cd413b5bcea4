# monoz.link developer entry points. `make help` lists them.
#
# Everything runs from virtualenvs this Makefile creates: a fresh clone needs
# nothing installed by hand. Re-runs are fast: each venv is rebuilt only when
# its requirements files change (stamp files).
#
# One venv per supported ansible-core (requirements/ansible-<core>.txt):
#   .venv           newest Python found (3.13, else 3.12): ansible-core 2.21,
#                   test + lint + ansible-builder tools, emulator and EDA deps
#   .venv-2.16      Python 3.11: ansible-core 2.16 (oldest supported, as in
#                   AAP 2.5 execution environments), test tools + emulator deps
#   .venv-2.17      Python 3.12: ansible-core 2.17
#   .venv-2.18      Python 3.12: ansible-core 2.18
#   .venv-2.19      Python 3.11: ansible-core 2.19, test tools + emulator deps
#   .venv-2.20      Python 3.12: ansible-core 2.20
#   .venv-importer  galaxy-importer (pins old attrs/flake8, so kept apart)
#
# make test runs the matrix: every (core, suite) cell below is one make target,
# run two at a time (JOBS=2), each logging to build/matrix/; a summary table
# (core x suite x result x seconds) ends the run.

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
# module code and module_utils also run on 3.9 (RHEL 9's python3 on a managed
# or delegated host): sanity compile/import and module unit tests run on it
ifeq ($(origin PY39),undefined)
PY39 := $(call find_python,3.9)
endif
PY_MAIN ?= $(or $(PY313),$(PY312))
MAIN_VER := $(if $(PY_MAIN),$(shell $(PY_MAIN) -c 'import sys; print("%d.%d" % sys.version_info[:2])'))

# --- the matrix: one venv per ansible-core, each on a Python it supports ---------
CORES  := 2.16 2.17 2.18 2.19 2.20 2.21
NEWEST := 2.21
# controller Python (X.Y) of each core's venv
PYV_2.16 := 3.11
PYV_2.17 := 3.12
PYV_2.18 := 3.12
PYV_2.19 := 3.11
PYV_2.20 := 3.12
PYV_2.21 := $(MAIN_VER)
# the module-only Python, and the cores that check module code on it
MODULE_PYV       ?= 3.9
MODULE_PY_CORES  ?= 2.16 2.21
# cores that run the e2e pytest suite (tests/e2e) and the ansible-test
# integration targets (tests/integration/targets); their venvs get the test
# tools and the emulator's dependencies (2.19's too, for E2E_CORES='2.19 ...')
E2E_CORES        ?= 2.16 2.19 2.21
TARGET_CORES     ?= $(CORES)
E2E_CAPABLE      := 2.16 2.19 2.21
# parallel cells (the machines have 2 cores)
JOBS             ?= 2

# sanity tests that depend on the Python or ansible-core version; the newest
# core runs every sanity test, the other cores and the module-only Python these
SANITY_VERSION_TESTS ?= --test compile --test import --test validate-modules
SANITY_MODULE_TESTS  ?= --test compile --test import

# --- paths -------------------------------------------------------------------
VENV          := $(ROOT)/.venv
VENV_IMPORTER := $(ROOT)/.venv-importer
VENV_2.21     := $(VENV)
$(foreach c,$(filter-out $(NEWEST),$(CORES)),$(eval VENV_$(c) := $(ROOT)/.venv-$(c)))
BUILD         := $(ROOT)/build
# real interpreters as python3.X, put ahead of pyenv's shims for ansible-test
PYBIN         := $(BUILD)/pybin
# Ansible finds the collection through this symlink to the repo root
COLLECTIONS   := $(BUILD)/collections
COLL_LINK     := $(COLLECTIONS)/ansible_collections/monoz/link
# ansible-test needs the collection under a physical .../ansible_collections/
# path (it resolves the working directory, so the symlink does not do); every
# cell installs the built tarball with its own core's ansible-galaxy into its
# own tree here, so what is tested is exactly what ships, and cells running in
# parallel share no tests/output/.
AT_BASE       := $(BUILD)/ansible-test
DIST          := $(BUILD)/dist/monoz-link-$(VERSION).tar.gz
MATRIX        := $(BUILD)/matrix
# ansible-test sanity keeps its venvs in ~/.ansible/test/venv, shared by every
# core and created without locking: one sanity run at a time
SANITY_LOCK   := $(BUILD)/.ansible-test-sanity.lock
# the emulator of the ansible-test integration targets: on a fixed port,
# because ansible-test passes no environment to the targets; one per core
# (86<minor>: 8616 for 2.16), so the cores' target cells can run in parallel
TARGETS_PORT  ?= 86$(word 2,$(subst ., ,$(CORE)))
# where the emulator's package lives (PYTHONPATH of the targets' emulator)
EMULATOR_PATH ?= $(ROOT)/emulator
TARGETS_LOCK  := $(BUILD)/.targets-emulator-$(TARGETS_PORT).lock

STAMP_IMPORTER := $(VENV_IMPORTER)/.stamp
REQ_EMULATOR   := $(wildcard requirements/emulator.txt)
# the main venv: newest core, every tool
REQ_2.21     := requirements/ansible-2.21.txt requirements/test.txt requirements/lint.txt \
                requirements/builder.txt $(REQ_EMULATOR) $(wildcard requirements/eda.txt)
$(foreach c,$(filter-out $(NEWEST),$(CORES)),$(eval REQ_$(c) := requirements/ansible-$(c).txt \
  $(if $(filter $(c),$(E2E_CAPABLE)),requirements/test.txt $(REQ_EMULATOR))))
REQ_IMPORTER := requirements/importer.txt
# the interpreter that builds each core's venv
$(foreach c,$(CORES),$(eval PYBUILD_$(c) := $$(PY$$(subst .,,$$(PYV_$(c))))))
STAMPS := $(foreach c,$(CORES),$(VENV_$(c))/.stamp) $(STAMP_IMPORTER)

# Environment for every tool: the venv first, then the real interpreters, and
# the collection on the collections path. No ansible.cfg at the repo root: it
# would be picked up by anyone running ansible from a checkout, and shipped.
COMMON_ENV := ANSIBLE_COLLECTIONS_PATH=$(COLLECTIONS) \
	ANSIBLE_RETRY_FILES_ENABLED=false \
	PYTHONDONTWRITEBYTECODE=1
$(foreach c,$(CORES),$(eval ENV_$(c) := env PATH="$(VENV_$(c))/bin:$(PYBIN):$$$$PATH" VIRTUAL_ENV=$(VENV_$(c)) $$(COMMON_ENV)))
ENV_221 := $(ENV_2.21)
# the core a cell runs on (cell/<core>_<suite> sets it)
CORE ?= $(NEWEST)
ENV_CORE := $(ENV_$(CORE))
PYTHON_CORE := $(VENV_$(CORE))/bin/python

# pip on these machines warns about absent local index directories; hide that noise only
PIP_QUIET := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }

# pytest options for the pytest suites (e.g. make integration PYTEST_ARGS='-k retain -x')
PYTEST_ARGS ?=

# --- the cells of each gate ----------------------------------------------------
# a cell is <core>_<suite>; `make cell/2.16_units` runs one on its own
LINT_CELLS        := $(NEWEST)_lint $(NEWEST)_ee
SANITY_CELLS      := $(foreach c,$(CORES),$(c)_sanity)
UNITS_CELLS       := $(foreach c,$(CORES),$(c)_units)
INTEGRATION_CELLS := $(foreach c,$(E2E_CORES),$(c)_e2e) \
                     $(if $(wildcard tests/reliability),$(NEWEST)_reliability) \
                     $(if $(wildcard emulator/tests),$(NEWEST)_emulator) \
                     $(if $(wildcard tests/eda),$(NEWEST)_eda) \
                     $(foreach c,$(TARGET_CORES),$(c)_targets)
MOLECULE_CELLS    := $(NEWEST)_molecule
# make test: longest first, so the two slots stay busy to the end
TEST_CELLS ?= $(filter $(INTEGRATION_CELLS),$(NEWEST)_reliability) \
              $(filter $(INTEGRATION_CELLS),$(foreach c,$(E2E_CORES),$(c)_e2e)) \
              $(SANITY_CELLS) $(LINT_CELLS) $(UNITS_CELLS) $(MOLECULE_CELLS) \
              $(filter-out $(NEWEST)_reliability $(foreach c,$(E2E_CORES),$(c)_e2e),$(INTEGRATION_CELLS))

# --- help --------------------------------------------------------------------
.PHONY: help
help:
	@cat <<'EOF'
	make demo         start the emulator, send example downlinks, show what the device got
	make test         the whole matrix ($(JOBS) cells at a time) and a summary table: lint sanity units integration molecule
	make lint         ansible-lint, changelog and docs lint, ansible-doc, galaxy-importer, ansible-builder introspect/create
	make sanity       ansible-test sanity --venv, cores $(CORES) (all tests on $(NEWEST)); module code on Python $(MODULE_PYV)
	make units        ansible-test units --venv, cores $(CORES); module tests on Python $(MODULE_PYV) too
	make integration  pytest e2e (cores $(E2E_CORES)), reliability, emulator, eda; ansible-test integration targets
	make molecule     molecule test --all (scenarios in extensions/molecule/)
	make cell/C_S     one matrix cell, e.g. make cell/2.16_units, make cell/2.21_e2e PYTEST_ARGS='-k retain'
	make bench        benchmarks (QUICK=1 for a short run)
	make chaos        the long fault-injection push
	make build        build the collection tarball into build/dist/
	make changelog    regenerate CHANGELOG.md from changelogs/
	make release      fold changelogs/fragments into changelog.yaml and CHANGELOG.md as version $(VERSION)
	make venv         create/refresh all virtualenvs
	make clean        remove build outputs (keeps venvs); make distclean also removes venvs
	EOF
	@echo "interpreters: main=$(or $(PY_MAIN),NONE) 3.12=$(or $(PY312),NONE) 3.11=$(or $(PY311),NONE) 3.9=$(or $(PY39),NONE)"

# --- virtualenvs ---------------------------------------------------------------
.PHONY: venv
venv: links
	$(MAKE) -j$(JOBS) $(STAMPS)

# $(call make_venv,python,venvdir,requirements...)
define make_venv
	test -n "$(1)" || { echo "ERROR: no suitable Python interpreter found for $(2) (see 'make help')" >&2; exit 1; }
	if ! "$(2)/bin/python" -c '' 2>/dev/null; then rm -rf "$(2)"; "$(1)" -m venv "$(2)"; fi
	"$(2)/bin/python" -m pip install -q --disable-pip-version-check $(addprefix -r ,$(3)) $(PIP_QUIET)
	"$(2)/bin/python" -m pip check
	touch "$@"
endef

$(foreach c,$(CORES),$(eval $(VENV_$(c))/.stamp: $(REQ_$(c)) ; $$(call make_venv,$(PYBUILD_$(c)),$(VENV_$(c)),$(REQ_$(c)))))

$(STAMP_IMPORTER): $(REQ_IMPORTER)
	$(call make_venv,$(PY_MAIN),$(VENV_IMPORTER),$(REQ_IMPORTER))

# --- collection exposure ---------------------------------------------------------
.PHONY: links
links:
	mkdir -p "$(PYBIN)" "$(dir $(COLL_LINK))"
	for p in $(PY39) $(PY311) $(PY312) $(PY313); do
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
$(DIST): FORCE | $(VENV)/.stamp
	mkdir -p "$(dir $(DIST))"
	$(ENV_2.21) ansible-galaxy collection build --force --output-path "$(dir $(DIST))" "$(ROOT)" >/dev/null
	echo "built $(DIST)"

# Everything the cells share, made once before they run in parallel: venvs,
# interpreter links, the tarball, ansible-test's get-pip stand-ins.
.PHONY: prep
prep: venv
	$(MAKE) build
	# get-pip stand-ins: ansible-test --venv cannot download get-pip here
	"$(VENV)/bin/python" scripts/ansible-test-get-pip.py $(foreach c,$(CORES),"$(VENV_$(c))/bin/python")
	mkdir -p "$(MATRIX)"

# $(call run_cells,CELL...): run the cells (JOBS at a time, carrying on past a
# failure), then print the summary; fails when any cell failed.
define run_cells
	rm -f $(foreach c,$(1),"$(MATRIX)/$(c).result")
	rc=0
	$(MAKE) -k -j$(JOBS) --output-sync=target PREPARED=1 $(addprefix cell/,$(1)) || rc=$$?
	echo "######## matrix"
	"$(PY_MAIN)" scripts/matrix-summary "$(MATRIX)" $(1) || rc=1
	exit $$rc
endef

# cell/<core>_<suite>: do-<suite> with CORE=<core>, timed and logged; on its
# own (make cell/2.16_units) it first runs prep, in a gate the gate has
cell/%: $(if $(PREPARED),,prep)
	scripts/matrix-cell "$(MATRIX)" $(word 1,$(subst _, ,$*)) $(word 2,$(subst _, ,$*)) \
	  $(MAKE) do-$(word 2,$(subst _, ,$*)) CORE=$(word 1,$(subst _, ,$*))

# --- gates -------------------------------------------------------------------------
.PHONY: test lint sanity units integration molecule
test: prep
	start=$$SECONDS
	$(call run_cells,$(strip $(TEST_CELLS)))
	echo "######## make test: $$((SECONDS - start)) s"
lint: prep
	$(call run_cells,$(LINT_CELLS))
sanity: prep
	$(call run_cells,$(SANITY_CELLS))
units: prep
	$(call run_cells,$(UNITS_CELLS))
integration: prep
	$(call run_cells,$(strip $(INTEGRATION_CELLS)))
molecule: prep
	$(call run_cells,$(MOLECULE_CELLS))

# --- cell recipes (run through cell/<core>_<suite>, after make prep) ----------------
# their output is the tools', not the recipe's own lines
.SILENT: do-sanity do-units do-targets do-e2e do-reliability do-emulator do-eda do-lint do-ee do-molecule
# $(AT_TREE) SUITE: install the tarball with this core's ansible-galaxy into the
# cell's own tree and make that tree its own git repository (otherwise
# ansible-test asks the enclosing checkout's git for the file list, gets nothing
# since build/ is ignored, and skips every test); prints the collection path.
define AT_FUNC
at_tree() {
  local base="$(AT_BASE)/$(CORE)-$$1"
  test -f "$(DIST)" || { echo "ERROR: $(DIST) missing: run make prep (or make test)" >&2; return 1; }
  rm -rf "$$base"
  mkdir -p "$$base"
  $(ENV_CORE) ansible-galaxy collection install --force --no-deps -p "$$base" "$(DIST)" >&2
  local tree="$$base/ansible_collections/monoz/link"
  ( cd "$$tree" && git init -q . \
    && printf '/tests/output/\n/tests/integration/inventory\n' >> .git/info/exclude \
    && git add -A )
  echo "$$tree"
}
# at LABEL CMD...: run one ansible-test invocation, carry on with the next one
# (so one run reports every failure), remember the failure. ansible-test exits 0
# with "All targets skipped" / "No tests found" when it finds nothing to test:
# that counts as a failure here.
failed=0
at() {
  local label=$$1 t=$$SECONDS log; shift
  log=$$(mktemp)
  echo "== ansible-test $$label"
  if ! "$$@" 2>&1 | tee "$$log"; then
    echo "FAILED: ansible-test $$label" >&2; failed=1
  elif grep -q -E "All targets skipped|No tests found" "$$log"; then
    echo "FAILED: ansible-test $$label found nothing to test" >&2; failed=1
  fi
  rm -f "$$log"
  echo "== ansible-test $$label: $$((SECONDS - t)) s"
}
endef

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

.PHONY: do-sanity
do-sanity:
	$(AT_FUNC)
	tree=$$(at_tree sanity)
	cd "$$tree"
	if [ "$(CORE)" = "$(NEWEST)" ]; then tests=""; what="all tests"; else tests="$(SANITY_VERSION_TESTS)"; what="$$tests"; fi
	at "sanity: core $(CORE), Python $(PYV_$(CORE)), $$what" \
	  flock "$(SANITY_LOCK)" $(ENV_CORE) ansible-test sanity --venv --python $(PYV_$(CORE)) --color no $$tests
	if [ -n "$(filter $(CORE),$(MODULE_PY_CORES))" ]; then
	  at "sanity: core $(CORE), Python $(MODULE_PYV) (module code), $(SANITY_MODULE_TESTS)" \
	    flock "$(SANITY_LOCK)" $(ENV_CORE) ansible-test sanity --venv --python $(MODULE_PYV) --color no $(SANITY_MODULE_TESTS)
	fi
	exit $$failed

.PHONY: do-units
do-units:
	$(AT_FUNC)
	tree=$$(at_tree units)
	cd "$$tree"
	# ansible-test units passes when it finds no tests; we do not
	if ! find tests/unit -name 'test_*.py' 2>/dev/null | grep -q .; then
	  echo "ERROR: no unit tests (tests/unit/**/test_*.py) in the built collection" >&2; exit 1
	fi
	at "units: core $(CORE), Python $(PYV_$(CORE))" \
	  $(ENV_CORE) ansible-test units --venv --python $(PYV_$(CORE)) --color no
	if [ -n "$(filter $(CORE),$(MODULE_PY_CORES))" ]; then
	  # on a module-only Python, ansible-test runs the tests of modules and module_utils
	  at "units: core $(CORE), Python $(MODULE_PYV) (module code)" \
	    $(ENV_CORE) ansible-test units --venv --python $(MODULE_PYV) --color no
	fi
	exit $$failed

# The ansible-test integration targets (tests/integration/targets) on the
# installed tarball, against an emulator on 127.0.0.1:$(TARGETS_PORT) that this
# recipe starts and stops by its PID (one at a time: the port is fixed).
.PHONY: do-targets
do-targets:
	$(AT_FUNC)
	test -d tests/integration/targets || { echo "ERROR: tests/integration/targets does not exist" >&2; exit 1; }
	tree=$$(at_tree targets)
	exec 9>"$(TARGETS_LOCK)"
	flock 9
	ready="$(BUILD)/targets-emulator.ready"
	emu_log="$(MATRIX)/$(CORE)_targets.emulator.log"
	rm -f "$$ready"
	PYTHONPATH="$(EMULATOR_PATH)" "$(VENV)/bin/python" -m monoz_emulator --host 127.0.0.1 \
	  --port $(TARGETS_PORT) --devices 50 --ready-file "$$ready" >"$$emu_log" 2>&1 &
	emu_pid=$$!
	trap 'kill $$emu_pid 2>/dev/null || true; wait $$emu_pid 2>/dev/null || true' EXIT
	# wait for its ready file (written once HTTP, broker and devices are up)
	for _ in $$(seq 600); do
	  [ -s "$$ready" ] && break
	  kill -0 $$emu_pid 2>/dev/null || { echo "ERROR: the emulator exited:" >&2; cat "$$emu_log" >&2; exit 1; }
	  sleep 0.1
	done
	[ -s "$$ready" ] || { echo "ERROR: the emulator was not ready in 60 s" >&2; cat "$$emu_log" >&2; exit 1; }
	cat "$$ready"
	printf 'monoz_test_emulator_url: http://127.0.0.1:%s\n' $(TARGETS_PORT) > "$$tree/tests/integration/integration_config.yml"
	cd "$$tree"
	at "integration targets: core $(CORE), Python $(PYV_$(CORE))" \
	  $(ENV_CORE) ansible-test integration --venv --python $(PYV_$(CORE)) --color no
	# the shipped example, from the installed tarball, on this core
	echo "== docs/examples/fleet_push.yml: core $(CORE)"
	$(ENV_CORE) "$(PYTHON_CORE)" "$(ROOT)/scripts/check-example-push.py" "$(AT_BASE)/$(CORE)-targets" \
	  http://127.0.0.1:$(TARGETS_PORT) || { echo "FAILED: docs/examples/fleet_push.yml" >&2; failed=1; }
	exit $$failed

# End-to-end pytest suites: real ansible-playbook runs against the emulator
# (pytest's exit 5, "no tests collected", fails too).
define PYTEST_CELL
	test -d "$(1)" || { echo "ERROR: $(1) does not exist" >&2; exit 1; }
	$(ENV_CORE) PYTHONPATH="$(ROOT)/emulator" "$(PYTHON_CORE)" -m pytest -p no:cacheprovider $(1) $(PYTEST_ARGS)
endef

.PHONY: do-e2e do-reliability do-emulator do-eda
do-e2e:
	$(call PYTEST_CELL,tests/e2e)
do-reliability:
	$(call PYTEST_CELL,tests/reliability)
do-emulator:
	$(call PYTEST_CELL,emulator/tests)
do-eda:
	$(call PYTEST_CELL,tests/eda)

.PHONY: do-lint
do-lint:
	$(STEP_FUNC)
	step "ansible-lint (production profile, .ansible-lint)" $(ENV_CORE) ansible-lint
	step "antsibull-changelog lint" $(ENV_CORE) antsibull-changelog lint
	step "antsibull-docs lint-collection-docs" \
	  $(ENV_CORE) antsibull-docs lint-collection-docs --plugin-docs \
	    --validate-collection-refs dependent --disallow-unknown-collection-refs "$(COLL_LINK)"
	step "ansible-doc renders every module, plugin and role" \
	  $(ENV_CORE) "$(PYTHON_CORE)" scripts/check-ansible-doc.py
	step "README.md links only to files in $(notdir $(DIST))" \
	  "$(PYTHON_CORE)" scripts/check-readme-links.py "$(DIST)" README.md
	step "docs/docsite/extra-docs.yml lists every guide in docs/docsite/rst/" \
	  "$(PYTHON_CORE)" scripts/check-docsite.py docs/docsite
	step "galaxy-importer on $(notdir $(DIST))" \
	  "$(VENV_IMPORTER)/bin/python" scripts/galaxy-importer-check.py "$(DIST)"
	exit $$failed

# Execution environments: ansible-builder introspect on the collection as
# installed from the tarball must list requests; create writes the build
# context of the example EE definition in docs/ee/ (no container engine needed).
EE_DIR := $(BUILD)/ee
.PHONY: do-ee
do-ee:
	$(STEP_FUNC)
	rm -rf "$(EE_DIR)"
	mkdir -p "$(EE_DIR)"
	$(ENV_CORE) ansible-galaxy collection install --force --no-deps -p "$(EE_DIR)/collections" "$(DIST)" >/dev/null
	step "ansible-builder introspect on the installed tarball lists requests" \
	  $(ENV_CORE) "$(PYTHON_CORE)" scripts/check-ee.py introspect "$(EE_DIR)/collections" requests
	step "ansible-builder create -f docs/ee/execution-environment.yml" \
	  $(ENV_CORE) "$(PYTHON_CORE)" scripts/check-ee.py create docs/ee/execution-environment.yml "$(EE_DIR)/context"
	exit $$failed

.PHONY: do-molecule
do-molecule:
	scenarios=$$(ls extensions/molecule/*/molecule.yml 2>/dev/null || true)
	roles=$$(ls -d roles/*/ 2>/dev/null || true)
	if [ -z "$$scenarios" ]; then
	  if [ -n "$$roles" ]; then
	    echo "ERROR: roles exist ($$roles) but extensions/molecule/ has no scenario" >&2; exit 1
	  fi
	  echo "******** SKIPPED: no roles and no molecule scenarios yet (extensions/molecule/<name>/molecule.yml) ********"
	  exit 0
	fi
	$(ENV_CORE) MOLECULE_COLLECTIONS_PATH="$(COLLECTIONS)" molecule test --all

# --- demo, benchmarks --------------------------------------------------------------
DEMO_SCRIPT  ?= $(firstword $(wildcard demo/run_demo.py docs/examples/run_demo.py) demo/run_demo.py)
BENCH_SCRIPT ?= bench/run_bench.py
CHAOS_SCRIPT ?= tests/reliability/chaos_push.py
STAMP_BENCH  := $(VENV)/.stamp-bench

# benchmark-only tools (matplotlib, py-spy, ...) go into the main venv on demand,
# so make test never pays for them
$(STAMP_BENCH): requirements/bench.txt $(VENV)/.stamp
	"$(VENV)/bin/python" -m pip install -q --disable-pip-version-check $(addprefix -r ,$(REQ_2.21) requirements/bench.txt) $(PIP_QUIET)
	"$(VENV)/bin/python" -m pip check
	touch "$@"

.PHONY: demo
demo: $(VENV)/.stamp links
	test -f "$(DEMO_SCRIPT)" || { echo "ERROR: $(DEMO_SCRIPT) does not exist yet" >&2; exit 1; }
	$(ENV_2.21) PYTHONPATH="$(ROOT)/emulator" "$(VENV)/bin/python" "$(DEMO_SCRIPT)"

.PHONY: bench
bench: $(STAMP_BENCH) links
	test -f "$(BENCH_SCRIPT)" || { echo "ERROR: $(BENCH_SCRIPT) does not exist yet" >&2; exit 1; }
	$(ENV_2.21) PYTHONPATH="$(ROOT)/emulator" "$(VENV)/bin/python" "$(BENCH_SCRIPT)" $(if $(QUICK),--quick)
	# Event-Driven Ansible: uplink-to-downlink latency through the whole loop, webhook intake
	$(ENV_2.21) PYTHONPATH="$(ROOT)/emulator" "$(VENV)/bin/python" bench/eda_bench.py \
	  $(if $(QUICK),--devices 10 --modes sequential --intake-seconds 3,--devices 100) \
	  --json "$(ROOT)/bench/results/$(if $(QUICK),quick,latest)-eda.json"

.PHONY: chaos
chaos: $(VENV)/.stamp links
	test -f "$(CHAOS_SCRIPT)" || { echo "ERROR: $(CHAOS_SCRIPT) does not exist yet" >&2; exit 1; }
	$(ENV_2.21) PYTHONPATH="$(ROOT)/emulator" "$(VENV)/bin/python" "$(CHAOS_SCRIPT)" --devices 20000

# --- changelog / release -----------------------------------------------------------
.PHONY: changelog
changelog: $(VENV)/.stamp
	$(ENV_2.21) antsibull-changelog generate

# make release: fold changelogs/fragments into changelogs/changelog.yaml (and
# CHANGELOG.md) under galaxy.yml's version; the release date is today's.
.PHONY: release
release: $(VENV)/.stamp
	$(ENV_2.21) antsibull-changelog release --version $(VERSION)
	$(ENV_2.21) antsibull-changelog lint

# --- cleaning ----------------------------------------------------------------------
.PHONY: clean
clean:
	rm -rf "$(BUILD)" tests/output tests/integration/inventory .pytest_cache .hypothesis .ansible importer_result.json
	find . -path ./.git -prune -o -path './.venv*' -prune -o -type d -name __pycache__ -print0 | xargs -0r rm -rf

.PHONY: distclean
distclean: clean
	rm -rf $(foreach c,$(CORES),"$(VENV_$(c))") "$(VENV_IMPORTER)"
