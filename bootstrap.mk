# bootstrap.mk version 7: the offline-bootstrap convention, for `include bootstrap.mk` in a project's Makefile.
# It expects beside it: bootstrap.py, virtualenv.py, virtualenv_support/, bootstrap_tools/, requirements.in,
# requirements.txt, requirements/. Set the variables below on the command line (`make ve PYTHON=python3.12`)
# or in the Makefile before the include.

BOOTSTRAP_MK_VERSION := 7

# The variables that steer a build take effect from the make command line or the Makefile, never from the
# environment: shells and CI images export PYTHON (node tooling does), VE or FORCE for reasons of their own.
BOOTSTRAP_STEERING := PYTHON VE GROUPS FORCE ONE_SLOT BOOTSTRAP_FAST LFS TARGET_PYTHONS TARGET_PLATFORMS RECORD RESOLUTION INDEX_URL \
  CONSTRAINTS ACCEPT_CHANGED_HASHES PACKAGES COOLDOWN_DAYS INDEX_NAME GLIBC_FLOOR REPORT_BASELINE RETARGET
$(foreach name,$(BOOTSTRAP_STEERING),$(if $(filter environment,$(origin $(name))),\
  $(info bootstrap.mk: ignoring $(name)=$($(name)) from the environment; to use it: make <target> $(name)=...)\
  $(eval undefine $(name))))
# The interpreter the ve is built for: PYTHON on the command line (or in the Makefile), else the version named in
# .python-version (pyenv's and uv's file) when there is one, else python3. Where the ve lives: VE, a symlink to
# .ve-a or .ve-b beside it (for VE=.venv: .venv-a, .venv-b).
BOOTSTRAP_FOLLOW_PYTHON_VERSION := $(if $(filter undefined,$(origin PYTHON)),--follow-python-version)
PYTHON ?= python3
VE ?= ve
# GROUPS=runtime builds the runtime set only (requirements.txt: what a deploy host runs); unset, the ve holds the dev
# set too (requirements-dev.txt, from requirements-dev.in: tests, linters), when the project has one.
GROUPS ?=
# FORCE=1 rebuilds the ve even when nothing it is built from has changed (for `make adopt`: adopt into a DEST with
# uncommitted changes, or replace convention files edited there; this checkout's ve is not rebuilt then).
FORCE ?=
# ONE_SLOT=1 removes the previous build before building, for a disk with room for one ve only (no ve meanwhile).
ONE_SLOT ?=
# BOOTSTRAP_FAST=0 builds without the speed machinery (no compile workers running beside virtualenv and pip; the
# bytecode is compiled in one step at the end): slower, the same bytes. For a reader checking the plain path.
BOOTSTRAP_FAST ?= 1
FLAKE8_ARGS ?=
PYTEST_ARGS ?=
# The Python versions (X.Y) the lock must fit; `make ve` refuses any other.
TARGET_PYTHONS ?= 3.10 3.11 3.12 3.13
# The platforms the lock must fit, each described by platforms/<name>.json (`make platforms` writes them), e.g.
# `linux-x86_64 linux-aarch64 macos-arm64`; empty: the platform `make freeze` runs on (the lock has no
# platform markers then). `make freeze` resolves every (platform, Python) pair from this one machine.
TARGET_PLATFORMS ?=
# The oldest glibc every Linux host of the lock runs (uv's default manylinux target): the Linux platforms of
# TARGET_PLATFORMS take no wheel that needs a newer one, a descriptor recorded on a newer host included.
GLIBC_FLOOR ?= 2.28
# RECORD=1: `make platforms` records this machine's descriptor from what it really supports.
RECORD ?=
# How `make freeze*` picks versions across TARGET_PYTHONS (and TARGET_PLATFORMS): fewest, one version of each package for every target
# wherever one fits them all (the report names the rest and why); newest, each target its own newest release.
RESOLUTION ?= fewest
# The package index for `make freeze*` (empty: pip's own default). Never written into a committed file.
INDEX_URL ?=
# The cooling-off of `make freeze*`: only releases uploaded at least this many days ago (0: off). Needs an index
# that serves upload times (PEP 691 JSON); with one that does not, freeze stops and says so.
COOLDOWN_DAYS ?= 7
# The name requirements-provenance.json gives INDEX_URL's index (`default` is pip's own; never a URL).
INDEX_NAME ?=
# How many (platform, Python) pairs `make freeze*` resolves at once (empty: the cores, at most 4; 1: one after
# another). The lock, requirements/ and the report are the same for any number.
FREEZE_JOBS ?=
# RETARGET=1: `make freeze*` may change the Pythons and platforms the lock fits (TARGET_PYTHONS, TARGET_PLATFORMS
# differing from the lock's `# targets:` and `# platforms:` lines); without it, such a freeze stops and says so.
RETARGET ?=
# ACCEPT_CHANGED_HASHES=1: `make freeze*` accepts other bytes for a version already in the lock (the report lists them).
ACCEPT_CHANGED_HASHES ?=
# PACKAGES="django celery": `make freeze-upgrade` moves only these (and what they need), not the seed or virtualenv.py.
PACKAGES ?=
# Where `make sbom` writes its CycloneDX documents (one per target Python).
SBOM_DIR ?= $(BOOTSTRAP_BUILD)/sbom
# A constraints file for `make freeze*` (pins pip-compile must keep), e.g. an organisation-wide one.
CONSTRAINTS ?=
# A lock the freeze report compares with instead of the one it replaces (`make adopt`: the project's old pins).
REPORT_BASELINE ?=
# The convention's targets, each also reachable as bootstrap-<name>. A project with a target of its own by one
# of these names lists it in BOOTSTRAP_PROJECT_TARGETS (before the include; `make adopt` writes it) and keeps its
# own, without make warnings; every other name, a target a later version of this file adds included, is short.
BOOTSTRAP_ALL_TARGETS := help ve test check verify freeze freeze-upgrade platforms clean adopt sbom
BOOTSTRAP_PROJECT_TARGETS ?=
BOOTSTRAP_TARGETS ?= $(filter-out $(BOOTSTRAP_PROJECT_TARGETS),$(BOOTSTRAP_ALL_TARGETS))

# Where the convention keeps its maintainer tooling and its build area (staging, caches, reports).
BOOTSTRAP_TOOLS := bootstrap_tools
BOOTSTRAP_BUILD := .bootstrap
# The ve's interpreter, with -E -s so ambient PYTHON* variables and user site stay out, through the slot's real
# path (resolved when the recipe starts, after `make ve`): through the `ve` link, a long run would import from
# whichever build a later `make ve` switched in.
VE_PYTHON = "$(or $(realpath $(VE)),$(VE))/bin/python" -E -s
# The maintainer tools (freeze, check, sbom, platforms, adopt) run in their own env, never in the project's ve: the
# convention locks them apart (bootstrap_tools/tools.txt, wheels in bootstrap_tools/wheels/), so pip-tools' own
# requirements never share the project's resolution and a deploy ve holds none of them. `bootstrap-tools` builds
# it with PYTHON, offline and hash-checked, by the same code as the ve (a no-op when nothing changed).
TOOLS_VE := $(BOOTSTRAP_BUILD)/tools
TOOLS_PYTHON = "$(or $(realpath $(TOOLS_VE)),$(TOOLS_VE))/bin/python" -E -s
# The project's own recipes run its tools in the ve the same way: `$(VE_RUN) pytest`, `$(VE_RUN) celery worker`
# (`$(VE_PYTHON) app.py` for a script), never a pytest or python from PATH, which lacks the lock's packages. A
# tool with no `python -m` form runs as "$(VE)/bin/<tool>" (its first line names the ve's Python). `make adopt`
# lists the recipes that call a tool from PATH (docs/adopt.md).
VE_RUN = $(VE_PYTHON) -m
FREEZE_ARGS = --targets "$(TARGET_PYTHONS)" --platforms "$(TARGET_PLATFORMS)" --resolution "$(RESOLUTION)" \
	$(if $(INDEX_URL),--index-url "$(INDEX_URL)") $(if $(CONSTRAINTS),--constraint "$(CONSTRAINTS)") \
	$(if $(ACCEPT_CHANGED_HASHES),--accept-changed-hashes) $(if $(RETARGET),--retarget) --cooldown-days "$(COOLDOWN_DAYS)" \
	$(if $(INDEX_NAME),--index-name "$(INDEX_NAME)") --glibc-floor "$(GLIBC_FLOOR)" \
	$(if $(FREEZE_JOBS),--jobs "$(FREEZE_JOBS)") $(if $(REPORT_BASELINE),--report-baseline "$(REPORT_BASELINE)")
# make check compares the lock's header with these settings.
CHECK_ARGS = --targets "$(TARGET_PYTHONS)" --platforms "$(TARGET_PLATFORMS)" --glibc-floor "$(GLIBC_FLOOR)"
# bootstrap.py (and, through its importer, the bootstrap_build modules it needs) are compiled from their tracked
# source on every run, never imported from bytecode (-B: none written either), so nothing hidden from git decides
# what runs; the no-op compiles a few hundred lines only. The checkout goes last on sys.path, so a project's own
# json.py or shutil.py at its root never shadows the standard library.
# -E -s rather than -I, and the version checked first, so an interpreter too old for bootstrap.py (2.7 has no -I,
# 3.9 cannot parse it) gets our one ERROR line, never its own usage text or a SyntaxError.
BOOTSTRAP_TOO_OLD = ERROR: PYTHON=$(PYTHON) is Python %d.%d, and bootstrap.py needs CPython 3.10 or newer, so no ve was built or changed. Run `make ve PYTHON=<path of an installed CPython>` naming one of the versions on the `\# targets:` line of requirements.txt.
BOOTSTRAP_RUN = $(PYTHON) -E -s -S -B -c 'import sys; sys.version_info >= (3, 10) or sys.exit("$(BOOTSTRAP_TOO_OLD)" \
	% sys.version_info[:2]); sys.path[:] = [p for p in sys.path if p] + [""]; import os, types; \
	bootstrap = sys.modules["bootstrap"] = types.ModuleType("bootstrap"); bootstrap.__file__ = os.path.abspath("bootstrap.py"); \
	exec(compile(open(bootstrap.__file__, "rb").read(), bootstrap.__file__, "exec", dont_inherit=True), vars(bootstrap)); \
	sys.exit(bootstrap.main(sys.argv[1:]))'
BOOTSTRAP = $(BOOTSTRAP_RUN) --ve "$(VE)"
# flake8 never reads what the convention brings or builds (third-party code, generated files).
VE_NAME = $(notdir $(patsubst %/,%,$(VE)))
VE_BASE = $(or $(patsubst .%,%,$(VE_NAME)),$(VE_NAME))
# Nor the convention's own code in a project that adopted it: written for 120 columns and linted where the
# convention is developed (that repository's Makefile empties this, so its `make test` lints it).
BOOTSTRAP_COMMA := ,
BOOTSTRAP_FLAKE8_CONVENTION ?= ./bootstrap.py,./bootstrap_build,./$(BOOTSTRAP_TOOLS)
BOOTSTRAP_FLAKE8_EXCLUDE = $(VE_NAME),.$(VE_BASE)-a,.$(VE_BASE)-b,.$(VE_BASE).tmp*,.$(VE_BASE)-?.deleting-*,$(BOOTSTRAP_BUILD),virtualenv.py,requirements,virtualenv_support$(if $(BOOTSTRAP_FLAKE8_CONVENTION),$(BOOTSTRAP_COMMA)$(BOOTSTRAP_FLAKE8_CONVENTION))
# A src-layout project (src/<package>/) is imported by its tests from the checkout, never installed into the ve:
# pytest's `pythonpath` option names src/ unless the project's own pytest configuration sets `pythonpath` (then
# it decides; PYTEST_PYTHONPATH= turns this off). A flat layout imports as it is: `python -m pytest` puts the
# checkout first on sys.path.
PYTEST_PYTHONPATH ?= $(if $(wildcard src/*/__init__.py),$(if $(shell grep -ls '^ *pythonpath *=' pyproject.toml \
	pytest.ini setup.cfg tox.ini 2>/dev/null),,src))

ifeq ($(.DEFAULT_GOAL),)
.DEFAULT_GOAL := $(if $(filter help,$(BOOTSTRAP_TARGETS)),help,bootstrap-help)
endif

$(foreach name,$(BOOTSTRAP_TARGETS),$(eval .PHONY: $(name))$(eval $(name): bootstrap-$(name)))

.PHONY: bootstrap-help  ## show this help
bootstrap-help:
	@echo "Targets (variables: PYTHON=$(PYTHON) VE=$(VE); FORCE=1 forces a rebuild; PYTEST_ARGS=... and"
	@echo "FLAKE8_ARGS=... narrow make test; PACKAGES=... limits freeze-upgrade; INDEX_URL=... for freeze*;"
	@echo "COOLDOWN_DAYS=$(COOLDOWN_DAYS) (0: off) and TARGET_PLATFORMS=$(TARGET_PLATFORMS) for freeze*):"
	@awk -F '## ' -v short=" $(BOOTSTRAP_TARGETS) " '/^\.PHONY: [a-z-]+ +## / { \
		sub(/^\.PHONY: /, "", $$1); sub(/ +$$/, "", $$1); name = $$1; \
		if (name ~ /^bootstrap-/ && index(short, " " substr(name, 11) " ")) name = substr(name, 11); \
		printf "  make %-20s %s\n", name, $$2 }' $(MAKEFILE_LIST)

# Always runs bootstrap.py: it decides by content (not mtimes) whether anything changed, in milliseconds.
.PHONY: bootstrap-ve  ## build ./ve from the checkout alone, offline (a no-op when nothing changed)
# When it fails, PYTHON is run once more: an interpreter that cannot start at all (not installed, a pyenv shim for
# a version that is not selected, not CPython 3) never reached bootstrap.py, whose own errors are one ERROR line.
BOOTSTRAP_NO_PYTHON = ERROR: PYTHON=$(PYTHON) cannot run (exit $$status: not installed, not CPython 3, or a pyenv shim for a version that is not selected), so no ve was built or changed. Run \`make ve PYTHON=<path of an installed CPython>\` naming one of the versions on the \`\# targets:\` line of requirements.txt.
bootstrap-ve:
	@$(BOOTSTRAP) $(if $(GROUPS),--groups "$(GROUPS)") $(if $(filter %adopt,$(MAKECMDGOALS)),,$(if $(FORCE),--force)) $(if $(ONE_SLOT),--one-slot) $(if $(filter 0,$(BOOTSTRAP_FAST)),--plain) \
		$(BOOTSTRAP_FOLLOW_PYTHON_VERSION) \
		$(if $(filter %freeze %freeze-upgrade %adopt,$(MAKECMDGOALS)),--freezing) || { status=$$?; \
		$(PYTHON) -E -S -c "" >/dev/null 2>&1 || echo "$(BOOTSTRAP_NO_PYTHON)" >&2; exit $$status; }

# Not a target of its own in `make help`: every maintainer target builds it first.
.PHONY: bootstrap-tools
bootstrap-tools:
	@$(BOOTSTRAP_RUN) --tools || { status=$$?; \
		$(PYTHON) -E -S -c "" >/dev/null 2>&1 || echo "$(BOOTSTRAP_NO_PYTHON)" >&2; exit $$status; }

.PHONY: bootstrap-test  ## make check, flake8, then pytest, inside ./ve (builds it first)
bootstrap-test: bootstrap-ve bootstrap-tools
	@$(TOOLS_PYTHON) -m $(BOOTSTRAP_TOOLS).check $(CHECK_ARGS)
	$(VE_PYTHON) -m flake8 --extend-exclude "$(BOOTSTRAP_FLAKE8_EXCLUDE)" $(FLAKE8_ARGS)
	$(VE_PYTHON) -m pytest $(if $(PYTEST_PYTHONPATH),-o pythonpath="$(PYTEST_PYTHONPATH)") $(PYTEST_ARGS)

.PHONY: bootstrap-verify  ## offline: every file in ./ve against its RECORD hash; names what was changed by hand
bootstrap-verify:
	@$(BOOTSTRAP) --verify

# Not `check: ve`: a broken lock or seed would stop `make ve` at its first error, and check lists them all; the
# tools' env is built from the convention's own lock, whatever state the project's is in.
.PHONY: bootstrap-check  ## offline: lock, requirements/, seeds and virtualenv.py agree; lists every problem
bootstrap-check: bootstrap-tools
	@$(TOOLS_PYTHON) -m $(BOOTSTRAP_TOOLS).check $(CHECK_ARGS)

.PHONY: bootstrap-freeze  ## after editing requirements.in: re-lock (keeping pins), fetch, prune, verify, report
bootstrap-freeze: bootstrap-tools
	@$(TOOLS_PYTHON) -m $(BOOTSTRAP_TOOLS).freeze $(FREEZE_ARGS)

.PHONY: bootstrap-freeze-upgrade  ## like freeze, every pin, the seed and virtualenv.py at their newest (or PACKAGES=...)
bootstrap-freeze-upgrade: bootstrap-tools
	@$(TOOLS_PYTHON) -m $(BOOTSTRAP_TOOLS).freeze \
		$(if $(PACKAGES),$(foreach name,$(PACKAGES),--upgrade-package=$(name)),--upgrade) $(FREEZE_ARGS)

# Generated descriptors never replace one recorded on the real platform (RECORD=1 there, then commit it).
.PHONY: bootstrap-platforms  ## write platforms/<name>.json for TARGET_PLATFORMS (RECORD=1: this machine's, recorded)
bootstrap-platforms: bootstrap-tools
	@$(TOOLS_PYTHON) -m $(BOOTSTRAP_TOOLS).platforms --pythons "$(TARGET_PYTHONS)" $(if $(RECORD),--record) \
		--glibc-floor "$(GLIBC_FLOOR)" $(TARGET_PLATFORMS)

.PHONY: bootstrap-sbom  ## offline: a CycloneDX SBOM (JSON) per target of what ships (the runtime set; the dev set apart)
bootstrap-sbom: bootstrap-tools
	@$(TOOLS_PYTHON) -m $(BOOTSTRAP_TOOLS).sbom --output "$(SBOM_DIR)"

# Through bootstrap.py: it removes only what it made, never through the ve link (VE=ve/ included), under the ve's
# lock (it waits for a running `make ve`, and refuses while a `make freeze` runs).
.PHONY: bootstrap-clean  ## remove ./ve, both of its build slots, leftovers and the convention's caches and staging
bootstrap-clean:
	@$(BOOTSTRAP) --clean && $(BOOTSTRAP_RUN) --tools --clean

# LFS=1: the project's wheels are stored with Git LFS (.gitattributes, `git lfs install --local` there).
.PHONY: bootstrap-adopt  ## bring this convention into another project: make adopt DEST=path (again: upgrade it)
bootstrap-adopt: bootstrap-tools
	@test -n "$(DEST)" || { echo "ERROR: name the project: make adopt DEST=path/to/project" >&2; exit 2; }
	@$(TOOLS_PYTHON) -m $(BOOTSTRAP_TOOLS).adopt "$(DEST)" $(if $(FORCE),--force) $(if $(LFS),--lfs) \
		$(if $(INDEX_URL),--index-url "$(INDEX_URL)") $(if $(ACCEPT_CHANGED_HASHES),--accept-changed-hashes) \
		$(foreach name,TARGET_PYTHONS TARGET_PLATFORMS RESOLUTION COOLDOWN_DAYS INDEX_NAME GLIBC_FLOOR,\
			$(if $(filter command line,$(origin $(name))),--setting "$(name)=$($(name))")) \
		$(ADOPT_ARGS)
