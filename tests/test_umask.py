"""Written files follow the umask (issue 19 item 8): grlo's atomic writers create their temporary file with mkstemp
(mode 0600) and directory with mkdtemp (0700); both get the mode open()/mkdir() would give, so collaborators on a
shared project directory can read the results."""

import os
import stat

import pytest
import torch
from safetensors.torch import save_file

from grlo.io import atomic_dir, umask, write_json, write_jsonl, write_text


@pytest.fixture
def with_umask():
    old = os.umask(0o022)

    def set_(mask):
        os.umask(mask)

    yield set_
    os.umask(old)


def _mode(p):
    return stat.S_IMODE(p.stat().st_mode)


@pytest.mark.parametrize("mask,file_mode,dir_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750),
                                                     (0o077, 0o600, 0o700), (0o002, 0o664, 0o775)])
def test_atomic_writers_follow_the_umask(tmp_path, with_umask, mask, file_mode, dir_mode):
    with_umask(mask)
    assert umask() == mask
    write_text(tmp_path / "a.txt", "x")
    write_json(tmp_path / "b.json", {"a": 1})
    write_jsonl(tmp_path / "new" / "c.jsonl", [{"a": 1}])
    with atomic_dir(tmp_path / "d") as d:
        (d / "f").write_text("x")
        save_file({"w": torch.zeros(2)}, str(d / "model.safetensors"))  # safetensors writes 0600 files
        (d / "sub").mkdir(mode=0o700)
        (d / "sub" / "private").write_text("x")
        (d / "sub" / "private").chmod(0o600)  # a copy of a cache file an older grlo wrote (shutil.copy2 keeps modes)
        (d / "run.sh").write_text("#!/bin/sh\n")
        (d / "run.sh").chmod(0o700)
    assert [_mode(tmp_path / n) for n in ("a.txt", "b.json", "new/c.jsonl")] == [file_mode] * 3
    assert [_mode(tmp_path / "d" / n) for n in ("f", "model.safetensors", "sub/private")] == [file_mode] * 3
    assert _mode(tmp_path / "d") == dir_mode and _mode(tmp_path / "new") == dir_mode
    assert _mode(tmp_path / "d" / "sub") == dir_mode and _mode(tmp_path / "d" / "run.sh") == dir_mode


@pytest.mark.integration
def test_smoke_run_leaves_no_private_file(smoke_outdir):
    """The smoke run (tests/conftest.py, the process's umask): with umask 022 no file is 0600 and no directory 0700."""
    if umask() != 0o022:
        pytest.skip(f"the smoke run ran under umask {umask():03o}, not 022")
    private = [str(p.relative_to(smoke_outdir)) for p in smoke_outdir.rglob("*")
               if _mode(p) == (0o700 if p.is_dir() else 0o600) and not p.is_symlink()]
    assert private == [], private[:20]
