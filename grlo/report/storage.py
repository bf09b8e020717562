"""The run's storage estimate: one number, printed by `grlo forecast` and checked by `grlo doctor` (disk).

Bytes written by a run: downloaded weights (bf16, 2 B/param), final checkpoints (fp32, 4 B/param, conservative) and
resume checkpoints (fp32 weights + Adam state without grads: 12 B/param, actor and critic for GRLO). Generations,
scores and logs are small beside these and not counted. Parameter counts: grlo/registry/models.yaml (`params_b`);
GRLO's step count (whether a resume checkpoint is ever written) is the run's own plan (grlo.report.forecast.grlo_plan).
"""

from __future__ import annotations

from grlo import config as _config
from grlo import registry
from grlo.models.ids import eval_models, resolve_eval_model

GIB = 1 << 30
SMOKE_PARAMS_B = 0.135  # SmolLM2-135M-Instruct stands in for every smoke model (registry smoke sources)


def params(name: str, mode: str) -> float:
    """Parameters of a registry model as this mode materialises it."""
    entry = registry.model(name)
    src = (entry.get("source") or {}).get(mode) or {}
    if mode == "smoke":
        return 0.0 if src.get("kind") == "tiny_reward" else SMOKE_PARAMS_B * 1e9
    return float(entry.get("params_b") or 0.0) * 1e9


def needed_rules(cfg: dict) -> set[str]:
    """GPU rules this config's DAG runs (training rules only when a stage is trained)."""
    need = {"generate", "score", "lmeval_fewshot"}
    for m in eval_models(cfg):
        r = resolve_eval_model(cfg, m)
        if r["stage"] == "grlo":
            need.add("train_grlo")
        elif r["stage"]:
            need.add("train_rlvr")
            if r["stage"] == "grlo-rlvr":
                need.add("train_grlo")
    return need


def fetched_models(cfg: dict) -> list[str]:
    """Registry models the run downloads (each once)."""
    names = [cfg["backbones"]["primary"], *cfg["backbones"].get("extra", []), cfg["reward_model"]]
    names += [m.partition("--")[0] for m in eval_models(cfg, "released")]
    if _config.get(cfg, "rlvr.mode") == "checkpoint" and f"{cfg['backbones']['primary']}--rlvr" in eval_models(cfg):
        names.append(_config.get(cfg, "rlvr.checkpoint.model"))
    if _config.get(cfg, "rlvr.reward.verifier") == "general-verifier" and "train_rlvr" in needed_rules(cfg):
        names.append("general-verifier")
    judge = _config.get(cfg, "evaluation.judge") or {}
    if judge.get("kind") == "reward_model" and judge.get("model"):
        names.append(judge["model"])
    return list(dict.fromkeys(n for n in names if n))


def weights_bytes(cfg: dict) -> float:
    """bf16 weights of every downloaded model (what passes through the caches)."""
    return sum(2 * params(n, cfg["mode"]) for n in fetched_models(cfg))


def storage_estimate(cfg: dict, grlo_steps: int) -> tuple[float, list[str]]:
    """(bytes, the parts) written by a run. `grlo_steps`: GRLO's step count, the run's own plan
    (grlo.report.forecast.run_storage passes it)."""
    mode = cfg["mode"]
    parts, total = [], 0.0
    for name in fetched_models(cfg):
        b = 2 * params(name, mode)
        total += b
        parts.append(f"{name} weights {b / GIB:.1f} GiB")
    g = cfg.get("grlo") or {}
    t = _config.get(cfg, "rlvr.train") or {}
    for m in eval_models(cfg):
        r = resolve_eval_model(cfg, m)
        if not r["stage"]:
            continue
        n = params(r["source"], mode)
        final = 4 * n
        if r["stage"] == "grlo":
            every = int(((g.get("verl") or {}).get("save_freq") if g.get("engine") == "verl" else None)
                        or g.get("save_freq", -1) or -1)
            saves = every > 0 and int(grlo_steps) >= every
            resume = int(g.get("keep_last", 1)) * 2 * 12 * n if saves else 0.0
        else:
            every = int(t.get("save_steps") or 0)
            steps = _config.get(cfg, f"rlvr.stages.{r['stage']}.max_steps") or t.get("max_steps")
            saves = every > 0 and (steps is None or int(steps) >= every)
            resume = int(t.get("save_total_limit") or 1) * 12 * n if saves else 0.0
        total += final + resume
        parts.append(f"{r['source']}/{r['stage']} final {final / GIB:.1f} GiB + resume {resume / GIB:.1f} GiB")
    return total, parts
