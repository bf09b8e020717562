"""`grlo download-prompts`: the official GRLO prompt release (or the user's own file), checksum-verified."""

from __future__ import annotations

import argparse

from grlo import config as C
from grlo.data import resolve_source_path
from grlo.download import copy_verified, fetch_url
from grlo.errors import GrloError
from grlo.io import verify_sha256, write_json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", nargs="+", required=True, help="config YAML files, merged in order")
    p.add_argument("--output", required=True, help="raw prompt JSONL to write")


def run(args: argparse.Namespace) -> int:
    cfg = C.load(args.config)
    pc = cfg["prompts"]
    if pc.get("path"):
        src = resolve_source_path(pc["path"])
        if src.is_file():  # a mismatch names the user's file and the key, not the temporary copy
            verify_sha256(src, pc.get("sha256"), what="prompts.sha256")
        actual = copy_verified(src, args.output, pc.get("sha256"))
        origin = str(pc["path"])
    elif pc.get("url"):
        actual = fetch_url(pc["url"], args.output, pc.get("sha256"), key="prompts.sha256")
        origin = pc["url"]
    else:
        raise GrloError("set prompts.url or prompts.path", path=", ".join(args.config), field="prompts")
    write_json(str(args.output) + ".source.json", {"source": origin, "sha256": actual, "expected_sha256": pc.get("sha256")})
    print(f"prompts: {origin} -> {args.output} (sha256 {actual})")
    return 0
