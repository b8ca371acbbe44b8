"""Shared pytest configuration: every fixture family lives in its own module."""

pytest_plugins = [
    "tests.fixtures.server",
    "tests.fixtures.docker",
    "tests.fixtures.federation",
    "tests.fixtures.reference",
    "tests.fixtures.smtp",
]
