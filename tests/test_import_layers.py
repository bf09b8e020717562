"""Imports of grlo/: at the top of a module, except a heavy optional dependency imported inside a function with its
reason (docs/architecture.md); and the CLI and the host env's modules start without the GPU stack."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# `# heavy: torch`, `# optional: pynvml`, `# in-worker: ray` (anywhere in the statement's comment)
REASON = re.compile(r"#.*\b(heavy|optional|in-worker): \S")
HEAVY = {"torch", "transformers", "vllm", "verl", "trl", "ray", "datasets", "deepspeed"}


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def function_local_imports(path: Path) -> list[tuple[int, str]]:
    """(line, statement) of each import inside a function (an `if TYPE_CHECKING:` block aside)."""
    src = path.read_text(encoding="utf-8")
    lines = src.splitlines()
    found = []

    def walk(node: ast.AST, in_func: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if _type_checking(child):
                continue
            if in_func and isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append((child.lineno, "\n".join(lines[child.lineno - 1:child.end_lineno])))
            walk(child, in_func or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    walk(ast.parse(src, str(path)), False)
    return found


def unexplained_imports(root: Path) -> list[str]:
    return [f"{p.relative_to(root.parent)}:{line}: {stmt.strip()}" for p in sorted(root.rglob("*.py"))
            for line, stmt in function_local_imports(p) if not REASON.search(stmt)]


def test_function_local_imports_carry_a_reason():
    bad = unexplained_imports(ROOT / "grlo")
    assert not bad, ("import these at the top of the module, or give the function-local import its reason "
                     "(`# heavy: torch`, `# optional: pkg`, `# in-worker: why`):\n" + "\n".join(bad))


def test_the_walker_finds_nested_and_unexplained_imports(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "m.py").write_text(
        "import os\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n"
        "def f():\n    import json\n    import torch  # heavy: torch\n    if os:\n        from grlo import io\n"
        "class C:\n    def g(self):\n        from x import (a,\n                       b)  # optional: x\n"
        "        import y  # heavy\n", encoding="utf-8")
    assert [b.split(": ", 1)[0] for b in unexplained_imports(pkg)] == ["pkg/m.py:6", "pkg/m.py:9", "pkg/m.py:14"]


def _loaded(code: str, env: dict | None = None) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nprint(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"],
                         capture_output=True, text=True, cwd=ROOT, env=env, check=True).stdout
    return set(out.split("\n")[-2].split())


def test_cli_starts_without_the_gpu_stack():
    code = "import sys\nfrom grlo.cli import main\nmain(['--help'])\nmain(['--version'])"
    assert not _loaded(code) & HEAVY


BLOCK = """import importlib.abc, sys
ALLOWED = set(sys.stdlib_module_names) | {"grlo", "yaml", "_yaml", "jsonschema", "attr", "attrs", "referencing",
                                          "rpds", "jsonschema_specifications"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] not in ALLOWED:
            raise ModuleNotFoundError(f"No module named {name!r} (host env)", name=name)
sys.meta_path.insert(0, Block())
"""


def test_host_env_modules_import_with_pyyaml_and_jsonschema_only():
    """The host env (envs/snakemake.yaml: Snakemake, pyyaml, jsonschema, grlo without its dependencies) runs the
    Snakefile, `grlo doctor`, `grlo status` and `grlo lock`: their modules import there."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    loaded = _loaded(BLOCK + "import grlo.workflow, grlo.doctor, grlo.status, grlo.lock_sources, grlo.cli", env)
    assert {"grlo", "yaml"} <= loaded and not loaded & HEAVY
