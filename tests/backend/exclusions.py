"""Node cases excluded from the suite run: regular expressions over the test names, each with
the reason a reader can check."""
EXCLUDED: dict[str, str] = {}
