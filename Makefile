# Two commands do all the set-up on a fresh Debian machine:
#   make dev   runs every function behind a local Knative-style broker
#   make test  runs every check and test, with real Redis, MongoDB-wire, SMTP and podman
.DEFAULT_GOAL := help
VENV := .venv/bin

.PHONY: help dev test lint bench k8s

help:
	@echo "make dev    run kshop locally: every function, the broker on :8080, Redis, MongoDB, SMTP"
	@echo "make test   install what is missing, then lint, type-check and run every test"
	@echo "make bench  cold-start and throughput benchmarks (tables in Markdown)"
	@echo "make k8s    re-render the plain manifests in k8s/ from the chart"

dev:
	scripts/bootstrap dev
	$(VENV)/kshop dev

test:
	scripts/bootstrap test
	$(MAKE) lint
	$(VENV)/pytest

lint:
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy

bench:
	scripts/bootstrap test
	$(VENV)/python bench/coldstart.py
	$(VENV)/python bench/throughput.py --otlp

k8s:
	scripts/render-k8s
