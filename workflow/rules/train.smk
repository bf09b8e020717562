rule train_grlo:
    input:
        prompts=O + "data/prompts/{backbone}/prepared.jsonl",
        policy=O + "models/{backbone}",
        reward=O + "models/" + config["reward_model"],
    output:
        model=directory(O + "checkpoints/{backbone}/grlo/final"),
        metrics=O + "checkpoints/{backbone}/grlo/metrics.jsonl",
    log:
        log_path("train_grlo", "{backbone}"),
    benchmark:
        bench_path("train_grlo", "{backbone}")
    params:
        cfg=W.section_hash(config, "grlo", "reward_model", "seed"),
        out=O + "checkpoints/{backbone}/grlo",
        device=O + "benchmarks/train_grlo/{backbone}.device.json",
    threads: workflow.cores
    resources:
        gpu=config["resources"]["gpus_train"],
    shell:
        "grlo train-grlo --config {CFG} --backbone {wildcards.backbone} --prompts {input.prompts}"
        " --policy-init {input.policy} --reward-model {input.reward} --output-dir {params.out}"
        " --device-record {params.device} > {log} 2>&1"


rule download_rlvr_data:
    output:
        data=O + "data/rlvr/train.jsonl",
        stats=O + "data/rlvr/stats.json",
    log:
        log_path("download_rlvr_data", "all"),
    params:
        cfg=W.section_hash(config, "rlvr"),
    shell:
        "grlo download-rlvr-data --config {CFG} --output {output.data} --stats {output.stats} > {log} 2>&1"


def rlvr_init(w):
    if w.stage == "grlo-rlvr":
        return O + f"checkpoints/{w.backbone}/grlo/final"
    return O + f"models/{w.backbone}"


rule train_rlvr:
    input:
        init=rlvr_init,
        data=O + "data/rlvr/train.jsonl",
    output:
        model=directory(O + "checkpoints/{backbone}/{stage}/final"),
        metrics=O + "checkpoints/{backbone}/{stage}/metrics.jsonl",
    wildcard_constraints:
        stage="rlvr|grlo-rlvr",
    log:
        log_path("train_rlvr", "{backbone}.{stage}"),
    benchmark:
        bench_path("train_{stage}", "{backbone}")
    params:
        cfg=W.section_hash(config, "rlvr", "seed"),
        out=O + "checkpoints/{backbone}/{stage}",
        device=O + "benchmarks/train_{stage}/{backbone}.device.json",
    threads: workflow.cores
    resources:
        gpu=config["resources"]["gpus_train"],
    shell:
        "grlo train-rlvr --config {CFG} --backbone {wildcards.backbone} --init {input.init}"
        " --data {input.data} --stage {wildcards.stage} --output-dir {params.out}"
        " --device-record {params.device} > {log} 2>&1"
