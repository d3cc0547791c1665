"""Shared pytest configuration; the fixtures themselves live in tests/fixtures/."""

pytest_plugins = ["tests.fixtures.services"]
