"""The run's GPU plan: which image and how many GPUs each GPU rule's jobs take (the rules' `resources: gpu=` and
`container:` read these through grlo.workflow), and train_grlo's engine. Below the Snakemake glue, so the forecast
(grlo.report.forecast) and grlo doctor price and check the same plan the rules reserve."""

from __future__ import annotations

from grlo import config as C
from grlo.config import prefix
from grlo.errors import GrloError
from grlo.eval.judge_server import judge_gpus


def container_image(cfg: dict) -> str:
    """config container.image, pinned to container.digest when set (`docker://repo/name@sha256:...`: the tag is
    dropped, the digest alone names the image)."""
    image = C.get(cfg, "container.image")
    digest = C.get(cfg, "container.digest")
    if not image or not digest:
        return image
    scheme, sep, ref = image.rpartition("://")
    name = ref.split("@", 1)[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    return f"{scheme}{sep}{name}@{digest}"


# ---- GPUs per job and the GRLO engine: the rules' `resources: gpu=` and container, and grlo doctor, read these ------

def grlo_engine(cfg: dict) -> dict:
    """train_grlo's engine (grlo.engine): container image, extra inputs (verl validates on a rule-scored benchmark
    file, grlo.verl.val_benchmark; grlo/train/verl/data.py), GPUs (n_gpus_per_node x nnodes; 0 on CPU) and nodes."""
    g = cfg["grlo"]
    nodes = int(g.get("nnodes", 1))
    plan = {"image": container_image(cfg), "val": [], "nodes": nodes,
            "gpus": 0 if g.get("device") == "cpu" else int(g["n_gpus_per_node"]) * nodes}
    if g.get("engine", "native") == "verl":
        image = C.get(cfg, "container.verl_image")
        if not image:
            raise GrloError("grlo.engine verl needs the verl image (docker/verl.Dockerfile)", path="config",
                            field="container.verl_image")
        bench = (g.get("verl") or {}).get("val_benchmark", "math500")
        plan.update(image=image, val=[f"{prefix(cfg)}data/benchmarks/{bench}.jsonl"])
    return plan


def rule_gpus(cfg: dict) -> dict[str, int]:
    """{rule: GPUs per job}, as the rules reserve them; `score` is per benchmark (a served AlpacaEval judge), here
    the largest over this config's benchmarks."""
    return {
        "generate": int(cfg["resources"]["gpus_eval"]),
        "lmeval_fewshot": int(cfg["resources"]["gpus_eval"]),
        "score": max([judge_gpus(cfg, b) for b in cfg["evaluation"]["benchmarks"]] or [0]),
        "train_grlo": grlo_engine(cfg)["gpus"],
        "train_rlvr": int(cfg["rlvr"]["gpus"]),
    }
