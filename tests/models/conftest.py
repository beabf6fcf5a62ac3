"""Every test here runs once per backend (tests/backends.py)."""
from tests.backends import backend  # noqa: F401
