"""docs/operators.md is what the registry and the exclusion list make of it today."""
from pathlib import Path

from .operators_doc import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "operators.md"


def test_operators_doc_is_current():
    assert DOC.read_text() == render(), \
        "regenerate: python -m tests.backend.operators_doc > docs/operators.md"
