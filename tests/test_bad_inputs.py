"""Every bad input we know of ends in exactly one stderr line naming the file / field, a non-zero exit, no traceback
and nothing written (issue 11 item 4). Each case runs the real `grlo` CLI in a subprocess; `--debug` shows the
traceback; an unexpected exception (a bug) still prints one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PAPER, SMOKE = str(ROOT / "config/config.yaml"), str(ROOT / "config/smoke.yaml")
PROMPTS = ROOT / "grlo/data/fixtures/grlo_prompts_smoke.jsonl"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false"}


def _prompt_row(i: int, **over) -> dict:
    row = {"data_source": "t", "prompt": [{"role": "user", "content": f"Describe thing number {i}."}],
           "ability": "general", "reward_model": {"style": "model", "ground_truth": ""},
           "extra_info": {"split": "train", "index": i}}
    return {**row, **over}


def _write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _overlay(d: Path, over: dict, name: str = "over.yaml") -> str:
    p = d / name
    p.write_text(yaml.safe_dump(over))
    return str(p)


def _prepare(inp: Path, out: Path, tokenizer: Path | None = None) -> list[str]:
    tok = tokenizer or inp.parent / "no-tokenizer-needed"
    return ["prepare-prompts", "--config", PAPER, SMOKE, "--input", str(inp), "--tokenizer", str(tok),
            "--output", str(out / "prepared.jsonl"), "--stats", str(out / "stats.json")]


def _score(i: Path, out: Path, gens: Path, output: Path | None = None) -> list[str]:
    data = _write_jsonl(i / "math500.jsonl", [{"id": "a", "prompt": "What is 1+1?", "answer": "2"}])
    return ["score", "--config", PAPER, SMOKE, "--benchmark", "math500", "--data", str(data),
            "--generations", str(gens), "--output", str(output or out / "score.json")]


def _model_dir(i: Path, with_weights: bool) -> Path:
    d = i / "model"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (d / "tokenizer.json").write_text("{}")
    if with_weights:
        (d / "model.safetensors").write_bytes(b"")
    return d


def _generate(i: Path, out: Path, model_dir: Path) -> list[str]:
    data = i / "data"
    data.mkdir()
    _write_jsonl(data / "math500.jsonl", [{"id": "a", "prompt": "What is 1+1?", "answer": "2"}])
    return ["generate", "--config", PAPER, SMOKE, "--model", "qwen3-4b-base--base", "--model-dir", str(model_dir),
            "--benchmarks", "math500", "--data-dir", str(data), "--output-dir", str(out / "gens"),
            "--device-record", str(out / "device.json")]


def _download_prompts(i: Path, out: Path, over: dict | None = None) -> list[str]:
    configs = [PAPER, SMOKE] + ([_overlay(i, over)] if over is not None else [])
    return ["download-prompts", "--config", *configs, "--output", str(out / "raw.jsonl")]


def _text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _fifo(path: Path) -> Path:
    os.mkfifo(path)  # nobody writes to it: an open() for reading would block forever
    return path


def _truncated_weights(i: Path) -> Path:
    """A model directory whose model.safetensors lost its second half (an interrupted copy)."""
    import torch
    from safetensors.torch import save_file

    d = _model_dir(i, with_weights=False)
    save_file({"w": torch.zeros(64, 64)}, str(d / "model.safetensors"))
    f = d / "model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    return d


def _with_config(i: Path, o: Path, text: str) -> list[str]:
    return ["download-prompts", "--config", PAPER, SMOKE, str(_text(i / "over.yaml", text)), "--output",
            str(o / "raw.jsonl")]


def _bad_bytes(i: Path) -> Path:
    p = i / "prompts.jsonl"
    p.write_bytes(json.dumps(_prompt_row(0)).encode() + b"\n" + b'{"prompt": "caf\xe9"}\n')
    return p


# name -> (build(in_dir, out_dir) -> argv, fragments the one line must contain)
CASES = {
    "prompt file not UTF-8": (lambda i, o: _prepare(_bad_bytes(i), o), ["prompts.jsonl", "line 2", "UTF-8"]),
    "generations file not UTF-8": (
        lambda i, o: _score(i, o, (i / "gens.jsonl", (i / "gens.jsonl").write_bytes(b'{"id": "a", "completions": ["\xff"]}\n'))[0]),
        ["gens.jsonl", "line 1", "UTF-8"]),
    "prompt file empty": (lambda i, o: _prepare((i / "p.jsonl", (i / "p.jsonl").write_text(""))[0], o),
                          ["p.jsonl", "no rows"]),
    "prompt file truncated JSON line": (
        lambda i, o: _prepare((i / "p.jsonl", (i / "p.jsonl").write_text(json.dumps(_prompt_row(0)) + "\n" + json.dumps(_prompt_row(1))[:40]))[0], o),
        ["p.jsonl", "line 2", "malformed JSON"]),
    "prompt field wrong type": (lambda i, o: _prepare(_write_jsonl(i / "p.jsonl", [_prompt_row(0, prompt="hello")]), o),
                                ["p.jsonl", "line 1", "'prompt'"]),
    "prompt field missing": (lambda i, o: _prepare(_write_jsonl(i / "p.jsonl", [{"extra_info": {"index": 0}}]), o),
                             ["p.jsonl", "line 1", "missing field 'prompt'"]),
    "extra_info wrong type": (lambda i, o: _prepare(_write_jsonl(i / "p.jsonl", [_prompt_row(0, extra_info=[1])]), o),
                              ["p.jsonl", "line 1", "extra_info"]),
    "duplicate extra_info.index": (
        lambda i, o: _prepare(_write_jsonl(i / "p.jsonl", [_prompt_row(0), _prompt_row(1), _prompt_row(7, extra_info={"index": 1})]), o),
        ["p.jsonl", "line 3", "duplicate extra_info.index 1", "line 2"]),
    "prompt file missing": (lambda i, o: _prepare(i / "nope.jsonl", o), ["nope.jsonl", "not found"]),
    "prompt file is a directory": (lambda i, o: _prepare(i, o), [str(Path("in")), "directory"]),
    "tokenizer directory missing": (
        lambda i, o: _prepare(_write_jsonl(i / "p.jsonl", [_prompt_row(0)]), o, i / "no-such-model"),
        ["no-such-model", "tokenizer directory not found", "fetch-model"]),
    "tokenizer directory without tokenizer files": (
        lambda i, o: _prepare(_write_jsonl(i / "p.jsonl", [_prompt_row(0)]), o, (i / "empty", (i / "empty").mkdir())[0]),
        ["empty", "no tokenizer files"]),
    "model directory missing": (lambda i, o: _generate(i, o, i / "no-such-model"),
                                ["no-such-model", "model directory not found"]),
    "model directory without weights": (lambda i, o: _generate(i, o, _model_dir(i, with_weights=False)),
                                        ["model", "no weights"]),
    "score --output is a directory": (lambda i, o: _score(i, o, _write_jsonl(i / "g.jsonl", [{"id": "a", "completions": ["2"]}]),
                                                           (o / "adir", (o / "adir").mkdir(parents=True))[0]),
                                      ["adir", "--output", "is a directory"]),
    "table --output is a directory": (lambda i, o: ["table", "--name", "table1", "--config", PAPER, SMOKE,
                                                     "--output", str((o / "tdir", (o / "tdir").mkdir(parents=True))[0])],
                                      ["tdir", "is a directory"]),
    "README score example offline (benchmark not prepared)": (
        lambda i, o: ["score", "--benchmark", "math500", "--generations",
                      str(_write_jsonl(i / "my_outputs.jsonl", [{"id": "a", "completions": ["2"]}])),
                      "--output", str(o / "my_score.json")],
        ["math500", "download-benchmark"]),
    "config YAML syntax error": (lambda i, o: ["download-prompts", "--config", PAPER, str((i / "b.yaml", (i / "b.yaml").write_text("grlo: [\n"))[0]),
                                  "--output", str(o / "raw.jsonl")],
                                 ["b.yaml", "cannot parse config", "line 2"]),
    "unknown benchmark in evaluation.benchmarks": (
        lambda i, o: _download_prompts(i, o, {"evaluation": {"benchmarks": ["math500", "mmlu"]}}),
        ["over.yaml", "evaluation.benchmarks[1]", "unknown benchmark 'mmlu'"]),
    "unknown benchmark in evaluation.overrides": (
        lambda i, o: _download_prompts(i, o, {"evaluation": {"overrides": {"math50": {"k": 1}}}}),
        ["over.yaml", "evaluation.overrides.math50", "unknown benchmark"]),
    "unknown backbone": (lambda i, o: _download_prompts(i, o, {"backbones": {"primary": "qwen9"}}),
                         ["backbones.primary", "unknown model 'qwen9'"]),
    "batch larger than the pinned prompt file": (
        lambda i, o: ["download-prompts", "--config", PAPER, _overlay(i, {"grlo": {"adapt_batch_size": False}}),
                      "--output", str(o / "raw.jsonl")],
        ["grlo.train_batch_size", "1000 prompts", "adapt_batch_size"]),
    "downloaded prompt file checksum mismatch": (
        lambda i, o: _download_prompts(i, o, {"prompts": {"url": PROMPTS.as_uri(), "path": None, "sha256": "0" * 64}}),
        [PROMPTS.as_uri(), "prompts.sha256", "checksum mismatch"]),
    "lone surrogate in a prompt": (
        lambda i, o: _prepare(_text(i / "p.jsonl", json.dumps(_prompt_row(0)) + "\n" + json.dumps(_prompt_row(1)).replace(
            "Describe", "De\\ud800scribe") + "\n"), o),
        ["p.jsonl", "line 2", "prompt[0].content", "lone UTF-16 surrogate"]),
    "lone surrogate in a completion": (
        lambda i, o: _score(i, o, _text(i / "g.jsonl", '{"id": "a", "completions": ["2 \\udfff"]}\n')),
        ["g.jsonl", "line 1", "completions[0]", "lone UTF-16 surrogate"]),
    "generate --output-dir is a file": (
        lambda i, o: [*_generate(i, o, _model_dir(i, with_weights=False))[:-4], "--output-dir",
                      str(_text(i / "afile", "x"))],
        ["afile", "--output-dir", "is not a directory"]),
    "train --output-dir under a file": (
        lambda i, o: ["train-grlo", "--config", PAPER, SMOKE, "--backbone", "qwen3-4b-base", "--engine", "native",
                      "--output-dir", str(_text(i / "afile", "x") / "run")],
        ["afile", "--output-dir", "its parent", "is a file"]),
    "truncated policy weights": (lambda i, o: _generate(i, o, _truncated_weights(i)),
                                 ["model.safetensors", "truncated safetensors file"]),
    "seed: 010 (YAML 1.1 octal)": (lambda i, o: _with_config(i, o, "seed: 010\n"),
                                   ["over.yaml", "seed", "'010'", "octal in YAML 1.1 (8 here)"]),
    "sexagesimal 1:30": (lambda i, o: _with_config(i, o, "grlo:\n  stop_grace_s: 1:30\n"),
                         ["over.yaml", "grlo.stop_grace_s", "base 60 (90 here)"]),
    "yes as a boolean": (lambda i, o: _with_config(i, o, "grlo:\n  resume: yes\n"),
                         ["over.yaml", "grlo.resume", "'yes'", "true or false"]),
    "duplicate YAML key": (lambda i, o: _with_config(i, o, "grlo:\n  seed: 1\n  keep_last: 2\n  seed: 2\n"),
                           ["over.yaml", "grlo.seed", "duplicate key (lines 2 and 4"]),
    "FIFO as --input": (lambda i, o: _prepare(_fifo(i / "p.fifo"), o), ["p.fifo", "FIFO"]),
    "FIFO as a config file": (lambda i, o: ["download-prompts", "--config", PAPER, str(_fifo(i / "c.yaml")),
                                            "--output", str(o / "raw.jsonl")], ["c.yaml", "config file is a FIFO"]),
    "prompt file checksum mismatch": (
        lambda i, o: _download_prompts(i, o, {"prompts": {"path": str(PROMPTS), "sha256": "0" * 64}}),
        [str(PROMPTS), "prompts.sha256", "checksum mismatch"]),
}


def _files(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*")) if d.exists() else []


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grlo.cli", *argv], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_nonzero_and_writes_nothing(case, tmp_path):
    build, fragments = CASES[case]
    i, o = tmp_path / "in", tmp_path / "out"
    i.mkdir()
    argv = build(i, o)
    before = _files(o)
    r = _run(argv, cwd=tmp_path)
    err = r.stderr.strip()
    assert r.returncode != 0, (case, r.stdout[-2000:])
    assert "Traceback" not in r.stderr and err.count("\n") == 0 and err.startswith("grlo "), (case, r.stderr[-3000:])
    for part in fragments:
        assert part in err, (case, part, err)
    assert _files(o) == before, (case, _files(o))  # no output, no .part litter
    assert not list(i.rglob("*.part"))


def test_debug_flag_shows_the_traceback(tmp_path):
    r = _run(_prepare(tmp_path / "nope.jsonl", tmp_path), cwd=tmp_path)
    assert "Traceback" not in r.stderr
    r = _run(["--debug", *_prepare(tmp_path / "nope.jsonl", tmp_path)], cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" in r.stderr and r.stderr.strip().splitlines()[-1].startswith("grlo ")


def test_unexpected_exception_keeps_its_traceback():
    """A bug is not a user error: it is not turned into one line."""
    from grlo import cli

    with pytest.raises(ZeroDivisionError):
        cli.COMMANDS["zz-test"] = (__name__, "test only")  # this module, as pytest imported it
        try:
            cli.main(["zz-test"])
        finally:
            del cli.COMMANDS["zz-test"]


def add_arguments(p) -> None:  # the "zz-test" command above
    pass


def run(args) -> int:
    return 1 // 0


def _unshare_ok() -> bool:
    if not shutil.which("unshare"):
        return False
    r = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=4k tmpfs /mnt"], capture_output=True)
    return r.returncode == 0


@pytest.mark.skipif(not _unshare_ok(), reason="needs user namespaces to mount a tiny tmpfs (a full disk)")
def test_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    """ENOSPC on a real 4 KiB tmpfs: the 12 KB prompt copy does not fit."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    argv = " ".join(["download-prompts", "--config", PAPER, SMOKE, "--output", str(mnt / "raw.jsonl")])
    script = (f"mount -t tmpfs -o size=4k tmpfs {mnt} && {{ {sys.executable} -m grlo.cli {argv}; rc=$?; "
              f"echo LISTING; ls -A {mnt}; exit $rc; }}")
    r = subprocess.run(["unshare", "-rm", "sh", "-c", script], env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    err = r.stderr.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert "raw.jsonl" in err and "no space left" in err, err
    listing = [ln for ln in r.stdout.split("LISTING", 1)[1].splitlines() if ln.strip()]
    assert listing == [], listing  # neither the output nor its .part temp file


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files without read permission")
def test_unreadable_file_is_one_line(tmp_path):
    p = _write_jsonl(tmp_path / "p.jsonl", [_prompt_row(0)])
    p.chmod(0)
    r = _run(_prepare(p, tmp_path / "out"), cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "permission denied" in r.stderr


def test_write_jsonl_refuses_a_lone_surrogate_and_leaves_nothing(tmp_path):
    """A completion decoded with a lone surrogate (no file to read it from): one line naming the output and row, not
    a UnicodeEncodeError after all the scoring was done."""
    from grlo.errors import GrloError
    from grlo.io import write_jsonl

    out = tmp_path / "samples.jsonl"
    with pytest.raises(GrloError, match=r"samples\.jsonl: row 2 has completions\[1\] with a lone UTF-16 surrogate"):
        write_jsonl(out, [{"completions": ["ok"]}, {"completions": ["ok", "x\udc80"]}])
    assert list(tmp_path.iterdir()) == []
