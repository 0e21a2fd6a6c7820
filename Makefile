# libsys.onprem: the two commands are `make lab` and `make test` (as root, Debian 12).
# Everything else here is a building block of those two.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.build/collections
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help setup setup-sanity images lab lab-down test lint units sanity build molecule \
        bench docs changelog clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup: ## Install Debian packages, podman settings and the controller virtualenv
	tools/setup-host.sh

setup-sanity: ## setup, plus ansible-test: a virtualenv (oldest core), a wheelhouse (newest core)
	tools/setup-host.sh --sanity

images: setup ## Build the container images from Debian's archive (cached by recipe)
	tools/build-images.sh

lab: images ## The main job: start the lab, converge site.yml, run preflight, show the demo
	tools/lab.sh up

lab-down: ## Remove the lab's containers and network
	tools/lab.sh down

test: setup-sanity images ## Everything: lint, units, sanity (2 cores), build, Molecule
	tools/run-tests.sh

lint: setup ## yamllint (strict), ruff, ansible-lint (production profile)
	tools/run-tests.sh lint

units: setup ## Unit tests of the plugins (pytest, controller virtualenv)
	tools/run-tests.sh units

sanity: setup-sanity images ## ansible-test sanity and units on the oldest and newest ansible-core
	tools/run-tests.sh sanity-oldest sanity-newest

build: setup ## Build the collection tarball, install it, ansible-doc every role from it
	tools/run-tests.sh build

molecule: images ## Molecule scenarios; one with SCENARIO=name
	MOLECULE_SCENARIOS="$(SCENARIO)" tools/run-tests.sh molecule

bench: images ## Benchmarks (benchmarks/), ratios against a baseline measured in the same run
	tools/run-benchmarks.sh $(BENCH)

docs: setup ## Regenerate the variable tables of the role READMEs from argument_specs
	tools/gen-role-docs.sh

changelog: setup ## Check the changelog fragments and render CHANGELOG.md
	antsibull-changelog lint && antsibull-changelog release --is-collection yes --version $$(awk '/^version:/{print $$2}' galaxy.yml)

clean: lab-down ## Remove build output (keeps images and the apt caches)
	rm -rf .build
