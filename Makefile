# pgstack: the two commands are `make lab` (bring the lab up and converge the stack) and
# `make test` (everything CI runs). Both work as root on a fresh Debian 12 machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# Debian packages the controller needs for the lab (nspawn, netns, NAT) and the clients the
# end-to-end tests use.
HOST_PACKAGES := debootstrap systemd-container iptables iproute2 openssh-client \
	postgresql-client redis-tools openssl python3-venv make
# And for the offline test layers, which run real servers as local processes: PostgreSQL (Debian's
# `postgresql`, the major of this machine's release), pgBackRest and Chromium (drills), prometheus
# for promtool (alert rules), prometheus-alertmanager for amtool (alertmanager.yml), PgBouncer,
# Redis, etcd (the etcd_auth module), HAProxy (haproxy.cfg checked and run) and Debian's python3-*
# libraries (the exporter, on the versions hosts run).
TEST_PACKAGES := postgresql pgbackrest chromium prometheus prometheus-alertmanager pgbouncer redis-server etcd-server haproxy \
	python3-pytest python3-prometheus-client python3-psycopg python3-redis python3-yaml python3-bcrypt
LAB_INVENTORY := inventory/lab
# The same deployment on Debian 12, beside the lab (docs/lab.md).
LAB12_INVENTORY := inventory/lab-debian12
LABHA_INVENTORY := inventory/lab-ha
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# Installs what is missing of PACKAGES; a policy-rc.d keeps the packages' services from starting
# on this machine (tests start their own processes).
define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		guard=; [ -e /usr/sbin/policy-rc.d ] || { guard=1; printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; \
			chmod 755 /usr/sbin/policy-rc.d; }; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; status=$$?; \
		[ -z "$$guard" ] || rm -f /usr/sbin/policy-rc.d; exit $$status; \
	fi
endef

.PHONY: host-deps
host-deps: ## install the Debian packages the lab and the end-to-end tests need (as root)
	$(call apt_install,$(HOST_PACKAGES))

.PHONY: test-deps
test-deps: host-deps ## and the servers the offline test layers run as local processes (as root)
	$(call apt_install,$(TEST_PACKAGES))

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# The collections of requirements.yml: the ansible package pinned in pyproject.toml ships them, and
# ansible-galaxy then has nothing to do (it contacts no server); one the venv lacks is installed
# from Galaxy into .ansible/collections, a directory of ansible.cfg's collections_path.
$(VENV)/.collections: requirements.yml $(VENV)/.installed
	$(BIN)/ansible-galaxy collection install -r requirements.yml -p .ansible/collections
	touch $@

# The clone as the collection pgstack.pgstack (ansible.cfg's collections_path): the roles name the
# shared Jinja tests by their full names (pgstack.pgstack.port), as an installed collection's must.
COLLECTION_LINK := .ansible/collections/ansible_collections/pgstack/pgstack
$(COLLECTION_LINK):
	mkdir -p $(@D)
	ln -sfn ../../../.. $@

.PHONY: venv
venv: $(VENV)/.installed $(VENV)/.collections $(COLLECTION_LINK) ## the controller's Python tool chain in .venv (ansible, molecule, pytest...) and the collections

.PHONY: lab
lab: host-deps venv ## bring the lab up and converge the whole stack on it
	$(BIN)/pgstack-lab up
	$(BIN)/ansible-playbook -i $(LAB_INVENTORY) playbooks/site.yml
	@$(BIN)/pgstack-lab summary

.PHONY: lab-debian12
lab-debian12: host-deps venv ## the same deployment on Debian 12, beside the lab: up and converged
	PGSTACK_LAB_INVENTORY=$(LAB12_INVENTORY) $(BIN)/pgstack-lab up
	$(BIN)/ansible-playbook -i $(LAB12_INVENTORY) playbooks/site.yml

.PHONY: lab-ha
lab-ha: host-deps venv ## the HA layout beside the lab (a Patroni cluster of pg1, pg2 and witness): up and converged
	PGSTACK_LAB_INVENTORY=$(LABHA_INVENTORY) $(BIN)/pgstack-lab up
	$(BIN)/ansible-playbook -i $(LABHA_INVENTORY) playbooks/site.yml

QUICK ?=
.PHONY: bench
bench: lab ## pgstack measured beside the alternatives on the lab: docs/benchmarks.md, raw JSON in .bench/ (QUICK=1: smallest sizes)
	$(BIN)/pgstack-bench $(if $(QUICK),--quick)

APP ?= app
.PHONY: app-shell
app-shell: venv ## a shell on app1 as application APP (default app) with its env file loaded
	$(BIN)/pgstack-lab ssh app1 "sudo -u $(APP) bash -c 'set -a; . /etc/pgstack/$(APP).env; set +a; cd /tmp; exec bash -i'"

.PHONY: lab-down
lab-down: venv ## stop and remove every lab machine, namespace, link and NAT rule (KILL=1: kill them instead of powering them off)
	$(BIN)/pgstack-lab down --all $(if $(KILL),--kill)

PYTHON_SOURCES := scripts exporters tests plugins roles/python_tool/files

.PHONY: lint
lint: venv ## yamllint, ansible-lint (production profile), ruff, mypy --strict
	$(BIN)/yamllint -s .
	$(BIN)/ansible-lint --nocolor
	$(BIN)/ruff check $(PYTHON_SOURCES)
	$(BIN)/ruff format --check $(PYTHON_SOURCES)
	$(BIN)/mypy scripts/pgstack_lab scripts/pgstack_backup scripts/pgstack_drill scripts/pgstack_dashboards scripts/pgstack_screenshots \
		scripts/pgstack_bench scripts/pgstack_common plugins/test/preflight.py plugins/filter/web_auth.py plugins/filter/hosts.py plugins/modules/etcd_auth.py \
		roles/python_tool/files/build_zip.py exporters/pgstack_exporter

.PHONY: dashboards
dashboards: venv ## regenerate the Grafana dashboards (dashboards/*.json) from scripts/pgstack_dashboards
	$(PY) -m pgstack_dashboards --output-dir dashboards

.PHONY: screenshots
screenshots: venv ## the PNGs of docs/images (drill report, dashboard layouts) with headless Chromium; not part of make test
	$(PY) -m pgstack_screenshots --output-dir docs/images

.PHONY: unit
unit: venv ## fast tests: unit and static checks over the repository
	$(BIN)/pytest -q tests/unit tests/static

.PHONY: alerts
alerts: test-deps ## promtool (Debian's): check the alert rules, then their unit tests in tests/alerts
	promtool check rules alerts/*.rules.yml
	promtool test rules tests/alerts/*.test.yml

# The exporter's tests on Debian's /usr/bin/python3 and python3-* packages: the versions hosts run.
DEBIAN_PYTEST := PYTHONPATH=$(CURDIR)/exporters:$(CURDIR)/scripts /usr/bin/python3 -m pytest -p no:cacheprovider

.PHONY: unit-debian
unit-debian: test-deps ## the exporter's unit tests on Debian's python3 packages (what hosts run)
	$(DEBIAN_PYTEST) -q tests/unit/test_exporter_*.py

.PHONY: integration
integration: test-deps venv ## tools against real servers run as local processes (PostgreSQL 15, pgBackRest, PgBouncer, Redis, etcd, HAProxy, Chromium)
	$(BIN)/pytest -q tests/integration --ignore=tests/integration/exporter
	$(DEBIAN_PYTEST) -q tests/unit/test_exporter_*.py tests/integration/exporter

.PHONY: lab-lifecycle
lab-lifecycle: host-deps venv ## the lab comes up and goes down cleanly, twice
	$(BIN)/pytest -q tests/lab

.PHONY: e2e
e2e: lab ## converge the lab, then test it from the outside with real clients
	@$(MAKE) --no-print-directory e2e-tests

.PHONY: e2e-tests
e2e-tests: venv ## the end-to-end tests alone, on the lab `make lab` converged
	$(BIN)/pytest -q -rfEP --durations=20 tests/e2e

.PHONY: e2e-debian12
e2e-debian12: lab-debian12 ## converge the Debian 12 lab, then the end-to-end tests whose behaviour differs by release on it
	@$(MAKE) --no-print-directory e2e-debian12-tests

.PHONY: e2e-debian12-tests
e2e-debian12-tests: venv ## the release-dependent end-to-end tests alone (marker `release`), on the Debian 12 lab
	PGSTACK_LAB_INVENTORY=$(LAB12_INVENTORY) $(BIN)/pytest -q -rfEP --durations=10 -m release tests/e2e

.PHONY: e2e-ha
e2e-ha: lab-ha ## converge the HA layout's lab, then its end-to-end tests (failover included)
	@$(MAKE) --no-print-directory e2e-ha-tests

.PHONY: e2e-ha-tests
e2e-ha-tests: venv ## the HA layout's end-to-end tests alone (marker `ha`), on the lab `make lab-ha` converged
	PGSTACK_LAB_INVENTORY=$(LABHA_INVENTORY) $(BIN)/pytest -q -rfEP -s --durations=10 -m ha tests/e2e

# The same tests in two parts, as `make test` schedules them: the steady cluster's first, then the
# failovers and what follows them (marker `failover`).
.PHONY: e2e-ha-steady-tests
e2e-ha-steady-tests: venv ## the HA tests that fail nothing over (markers `ha`, not `failover`)
	PGSTACK_LAB_INVENTORY=$(LABHA_INVENTORY) $(BIN)/pytest -q -rfEP -s --durations=10 -m "ha and not failover" tests/e2e

.PHONY: e2e-ha-failover-tests
e2e-ha-failover-tests: venv ## the HA tests that fail the cluster over and converge after it (marker `failover`)
	PGSTACK_LAB_INVENTORY=$(LABHA_INVENTORY) $(BIN)/pytest -q -rfEP -s --durations=10 -m "ha and failover" tests/e2e

.PHONY: test-upgrade
test-upgrade: venv ## docs/runbooks/upgrade-to-debian13.md as written: the Debian 12 lab's data moved to the lab (both up and converged)
	PGSTACK_UPGRADE_OLD_INVENTORY=$(LAB12_INVENTORY) $(BIN)/pytest -q -rfEP -m upgrade tests/e2e/test_upgrade.py

MOLECULE_ROLES := $(patsubst roles/%/molecule/default/molecule.yml,%,$(wildcard roles/*/molecule/default/molecule.yml))

# Scenarios at a time: three alone; `make test` runs two beside the end-to-end tests.
MOLECULE_JOBS ?= 3
.PHONY: molecule
molecule: host-deps venv ## each role's molecule scenario (create, converge, idempotence, check, verify, destroy), MOLECULE_JOBS (3) at a time
	@$(MAKE) --no-print-directory -j$(MOLECULE_JOBS) --output-sync=target $(addprefix molecule-,$(MOLECULE_ROLES))

# One scenario; each has its own lab hosts, so scenarios run side by side. `molecule reset` first:
# the state an interrupted run left (its hosts "created") would make this run skip creating them.
molecule-%: host-deps venv
	@echo "== molecule: roles/$*"
	@start=$$(date +%s); cd roles/$* && $(CURDIR)/$(BIN)/molecule reset >/dev/null 2>&1; \
		$(CURDIR)/$(BIN)/molecule test; status=$$?; \
		echo "== molecule: roles/$* $$( [ $$status -eq 0 ] && echo passed || echo FAILED ) in $$(( $$(date +%s) - start )) s"; \
		exit $$status


# `make test`: the layers in two phases of two lanes each (tests/layers.sh says how and why):
#   lint unit alerts integration  beside  lab-lifecycle lab;  then  e2e  beside  molecule, then
#   the Debian 12 lab and its end-to-end tests.
# Each layer's duration, then the whole suite's; the lab is torn down at the end, whatever happened.
.PHONY: test
test: host-deps venv ## everything CI runs, layer by layer with durations; always tears the lab down
	@bash tests/layers.sh
