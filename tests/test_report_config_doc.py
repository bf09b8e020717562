"""config/README.md generator: comments attach to the right keys; the committed README covers every section."""

import yaml

from grlo.config import REPO_ROOT
from grlo.report import config_doc


def test_comments_attach_to_keys_and_skip_the_file_header(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("# file header, not a key's doc\nmode: paper\n\nsec:\n  # above a\n  a: 1   # after a\n"
                 "  b: {x: 1}  # flow map\n  sub:\n    c: [1, 2]\n")
    notes = config_doc.comments(p)
    assert "mode" not in notes
    assert notes["sec.a"] == "above a after a" and notes["sec.b"] == "flow map" and "sec.sub.c" not in notes
    s = tmp_path / "s.yaml"
    s.write_text("mode: smoke\nsec:\n  a: 2   # smaller in smoke\n")
    text = config_doc.render(p, s)
    row = next(line for line in text.splitlines() if line.startswith("| `sec.a`"))
    assert "`1`" in row and "`2`" in row and "(smoke: smaller in smoke)" in row
    assert any(line.startswith("| `sec.sub.c` | `[1, 2]` | same |") for line in text.splitlines())


def test_committed_readme_documents_every_section():
    text = (REPO_ROOT / "config" / "README.md").read_text()
    cfg = yaml.safe_load((REPO_ROOT / "config" / "config.yaml").read_text())
    missing = [k for k in cfg if f"## `{k}`" not in text]
    assert not missing, f"regenerate: python -m grlo.report.config_doc > config/README.md (missing {missing})"


def test_keys_only_smoke_sets_are_documented():
    """evaluation.custom_models (and known_answer_row) are set only in smoke.yaml: config/README.md still lists them."""
    from grlo.config import REPO_ROOT

    doc = (REPO_ROOT / "config" / "README.md").read_text()
    row = next(x for x in doc.splitlines() if x.startswith("| `evaluation.custom_models` |"))
    assert "unset (default)" in row and "grlo/models/custom.py" in row and "<\\|im_end\\|>" in row
    assert row.count(" | ") == 3  # four cells: the | inside the value is escaped
    assert "| `evaluation.known_answer_row` |" in doc
