"""The scorer clears sandbox scratch in its own process (grlo/eval/sandbox.py): the non-recursive remover walks with
chdir, and must leave the caller's working directory as it found it, or every relative path after a code benchmark
(a later --output, the next benchmark's config) resolves from '/'."""

import os

from grlo.eval import _runner


def test_clear_dir_keeps_the_callers_working_directory(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.chdir(home)
    d = tmp_path / "scratch"
    (d / "a" / "b" / "c").mkdir(parents=True)
    (d / "a" / "b" / "f").write_text("x")
    os.symlink("/", d / "a" / "root")
    assert _runner.clear_dir(str(d)) is True
    assert os.listdir(d) == []
    assert os.getcwd() == str(home)
    assert _runner.clear_dir(str(tmp_path / "missing")) is False  # an error path, the same directory after it
    assert os.getcwd() == str(home)
