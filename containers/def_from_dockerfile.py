"""Apptainer definition files from our two Dockerfiles, so that a cluster without Docker builds the same images:

    python containers/def_from_dockerfile.py            # rewrites containers/grlo.def and containers/grlo-verl.def
    apptainer build --fakeroot grlo.sif containers/grlo.def     (from the repository root; `make sif` does both)

The Dockerfiles stay the one source of the pins (the release workflow builds them with Docker); the .def files are
generated from them and committed, and tests/test_containers.py fails when they drift. Handled instructions (all our
Dockerfiles use): ARG (defaults substituted), FROM, ENV, RUN, COPY (build context = the repository root), LABEL, CMD;
USER, WORKDIR and VOLUME have no build-time meaning under Apptainer (it runs as the calling user; the workflow binds
/cache and sets the working directory) and are dropped.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = {"grlo": "Dockerfile", "grlo-verl": "docker/verl.Dockerfile"}  # SIF name -> Dockerfile


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, argument) pairs: comments dropped, continuation lines joined."""
    out, buf = [], ""
    for line in text.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):
            continue
        buf += line.rstrip()
        if buf.endswith("\\"):
            buf = buf[:-1].rstrip() + " "
            continue
        word, _, arg = buf.strip().partition(" ")
        out.append((word.upper(), arg.strip()))
        buf = ""
    return out


def _shell_value(v: str) -> str:
    """ENV values keep Docker's expansion of $VAR (PATH=/opt/venv/bin:$PATH)."""
    return f'"{v}"' if "$" in v else shlex.quote(v)


def _pairs(arg: str) -> list[tuple[str, str]]:
    return [tuple(tok.split("=", 1)) for tok in shlex.split(arg)]


def convert(dockerfile: str, name: str) -> str:
    args: dict[str, str] = {}

    def sub(s: str) -> str:
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), m.group(0)), s)

    base, env, post, files, labels, run = None, [], [], [], [], None
    for word, arg in instructions(Path(ROOT / dockerfile).read_text(encoding="utf-8")):
        if word == "ARG":
            k, _, v = arg.partition("=")
            args.setdefault(k, v) if v else None
        elif word == "FROM":
            base = sub(arg)
        elif word == "ENV":
            env += [f"export {k}={_shell_value(sub(v))}" for k, v in _pairs(arg)]
        elif word == "RUN":
            post.append(sub(arg))
        elif word == "COPY":
            *srcs, dst = shlex.split(arg)
            files += [f"{s} {dst.rstrip('/') + '/' + Path(s).name if dst.endswith('/') else dst}" for s in srcs]
        elif word == "LABEL":
            labels += [f"{k} {sub(v)}" for k, v in _pairs(arg)]
        elif word == "CMD":  # `apptainer run IMAGE ARGS`: the command's program with the caller's arguments
            run = shlex.quote(json.loads(arg)[0])
        elif word not in ("USER", "WORKDIR", "VOLUME"):
            raise SystemExit(f"{dockerfile}: instruction {word} has no Apptainer translation here")
    if base is None:
        raise SystemExit(f"{dockerfile}: no FROM")
    parents = sorted({str(Path(f.split()[1]).parent) for f in files})
    lines = [f"# GENERATED from {dockerfile} by containers/def_from_dockerfile.py: edit the Dockerfile, then rerun it.",
             f"# Build (repository root, no Docker, no root): apptainer build --fakeroot {name}.sif containers/{name}.def",
             "Bootstrap: docker", f"From: {base}", "", "%setup",
             *[f"    mkdir -p ${{APPTAINER_ROOTFS}}{p}" for p in parents], "", "%files",
             *[f"    {f}" for f in files], "", "%environment", *[f"    {e}" for e in env], "", "%post",
             "    set -e", *[f"    {e}" for e in env], *[f"    {p}" for p in post], "", "%labels",
             *[f"    {lab}" for lab in labels], "", "%runscript", f"    exec {run or '/bin/bash'} \"$@\"", ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, dockerfile in IMAGES.items():
        path = ROOT / "containers" / f"{name}.def"
        text = convert(dockerfile, name)
        if check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.write_text(text, encoding="utf-8")
            print(f"{path.relative_to(ROOT)} <- {dockerfile}")
    if stale:
        print(f"stale (rerun python containers/def_from_dockerfile.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
