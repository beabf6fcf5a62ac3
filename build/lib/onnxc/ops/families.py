"""Imports every op-family module so that its registrations run."""
import importlib
import pkgutil

from . import __path__ as _ops_path

_SKIP = {"registry", "families", "context", "common"}

for _info in sorted(pkgutil.iter_modules(_ops_path), key=lambda m: m.name):
    if _info.name not in _SKIP:
        importlib.import_module(f"{__package__}.{_info.name}")
