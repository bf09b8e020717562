"""Tests that import verl (0.6.1, the GRLO engine's pinned release) run in their own venv, `.venv-verl`
(`make verl-venv`; `make test` runs `.venv-verl/bin/python -m pytest tests/verl`): verl's Hydra/OmegaConf need antlr4
4.9, lm-eval[math] in the main venv needs 4.11, so the two cannot share one environment. The main suite, where verl is
not importable, collects nothing here; in .venv-verl a missing verl collects nothing either, and pytest's "no tests ran"
(exit 5) fails `make test`."""

import importlib.util

if importlib.util.find_spec("verl") is None or importlib.util.find_spec("hydra") is None:
    collect_ignore_glob = ["test_*.py"]
else:
    from grlo.train.verl.compat import ensure_transformers_aliases

    ensure_transformers_aliases()
