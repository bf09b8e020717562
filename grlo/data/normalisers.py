"""Row converters of the benchmarks whose raw rows need more than a field map (grlo.data.benchmarks.NORMALISERS):
LiveCodeBench (test cases in JSON or zlib-compressed pickle) and IFEval (instruction ids and their kwargs)."""

from __future__ import annotations

import base64
import io
import json
import pickle
import zlib

from grlo.errors import GrloError


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


def lcb(rows: list[dict], spec: dict) -> list[dict]:
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


def ifeval(rows: list[dict], spec: dict) -> list[dict]:
    out = []
    for r in rows:
        out.append({"id": str(r["key"]), "problem": r["prompt"], "answer": None, "key": r["key"],
                    "instruction_id_list": list(r["instruction_id_list"]),
                    "kwargs": [dict(k) if k else {} for k in r["kwargs"]]})
    return out
