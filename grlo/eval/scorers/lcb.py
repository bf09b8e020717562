"""LiveCodeBench code generation: public + private tests run in our sandbox (pass@1 over samples).

Rows come from livecodebench/code_generation_lite (release files test*.jsonl), restricted to the configured date
window [date_from, date_to) on `contest_date`. Private tests are stored base64(zlib(pickle(json string))); they are
unpickled with an Unpickler that refuses every global, so only plain strings/bytes can come out of it.
stdin problems compare stdout line by line (grlo.eval.code_exec.outputs_match); functional (LeetCode) problems
call `Solution.<func_name>` with the JSON-decoded arguments and compare the returned value.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import re
import zlib

from grlo.errors import GrloError
from grlo.eval import code_exec
from grlo.eval.sandbox import Limits
from grlo.eval.scorers import ScoreResult


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module, name):  # no classes, no callables: data only
        raise pickle.UnpicklingError(f"refusing global {module}.{name}")


def decode_tests(raw) -> list[dict]:
    if isinstance(raw, list):
        return raw
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        pass
    obj = _PlainUnpickler(io.BytesIO(zlib.decompress(base64.b64decode(raw)))).load()
    if isinstance(obj, bytes):
        obj = obj.decode("utf-8")
    return json.loads(obj) if isinstance(obj, str) else obj


def normalise(rows: list[dict], spec: dict) -> list[dict]:
    src = spec["source"]
    lo, hi = src.get("date_from"), src.get("date_to")
    out = []
    for r in rows:
        date = str(r.get("contest_date", ""))[:10]
        if (lo and date < lo) or (hi and date >= hi):
            continue
        meta = r.get("metadata") or "{}"
        meta = json.loads(meta) if isinstance(meta, str) else meta
        tests = decode_tests(r.get("public_test_cases") or "[]") + decode_tests(r.get("private_test_cases") or "[]")
        if not tests:
            raise GrloError(f"problem {r.get('question_id')} has no tests", field=spec["name"])
        out.append({"id": str(r["question_id"]), "problem": r["question_content"], "answer": None,
                    "starter_code": r.get("starter_code") or "", "fn_name": meta.get("func_name"),
                    "testtype": tests[0].get("testtype", "stdin"), "tests": tests,
                    "platform": r.get("platform"), "contest_date": date, "difficulty": r.get("difficulty")})
    return out


# Language tag in any case (```python, ```Python, ```PY, ```python3), or none.
_FENCE = re.compile(r"```(?:python3|python|py)?[ \t]*\r?\n(.*?)```", re.S | re.I)


def extract_code(text: str) -> str:
    """The last fenced code block (LiveCodeBench's rule); empty when there is no fence."""
    blocks = _FENCE.findall(text or "")
    return blocks[-1] if blocks else ""


def check(problem: dict, completion: str, limits: Limits, pool=None) -> tuple[str, bool, str]:
    code = extract_code(completion)
    if problem["testtype"] == "functional":
        # LeetCode starter code uses typing names without importing them.
        program = "from typing import *\nfrom collections import *\nimport math, heapq, bisect, itertools\n" + code
        ok, detail = code_exec.check_call_tests(program, f"Solution.{problem['fn_name']}", problem["tests"], limits,
                                                pool)
    else:
        ok, detail = code_exec.check_stdio_tests(code, problem["tests"], limits, pool)
    return code, ok, detail


def score(spec: dict, problems: list[dict], completions: list[list[str]], options: dict) -> ScoreResult:
    isolation = code_exec.sandbox_isolation(options)
    sb = spec.get("sandbox", {}) or {}
    limits = Limits(timeout_s=float(sb.get("timeout_s", 60)), test_timeout_s=float(sb.get("test_timeout_s", 6)),
                    mem_mb=int(sb.get("mem_mb", 2048)))
    workers = code_exec.n_workers(options)
    with code_exec.sandbox_pool(limits, workers) as pool:
        records = code_exec.score_completions(problems, completions, lambda p, c: check(p, c, limits, pool), workers)
    src = spec["source"]
    return ScoreResult(records, info={"backend": "grlo sandbox", "isolation": isolation, "date_from": src.get("date_from"),
                                      "date_to": src.get("date_to"), "timeout_s": limits.timeout_s,
                                      "test_timeout_s": limits.test_timeout_s})
