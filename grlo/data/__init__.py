"""Data: prompts, benchmarks and smoke fixtures."""

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def resolve_source_path(spec: str) -> Path:
    """`fixture:NAME` -> a fixture shipped in the package; anything else is a filesystem path."""
    if spec.startswith("fixture:"):
        return FIXTURES / spec.split(":", 1)[1]
    return Path(spec).expanduser()
