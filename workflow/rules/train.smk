from grlo.train.rlvr import rlvr_image

# train_grlo's engine (grlo.engine) and train_rlvr's (rlvr.engine): verl runs in its own image (container.verl_image,
# docker/verl.Dockerfile), the native and TRL trainers in the main image; grlo.workflow.grlo_engine gives train_grlo's
# image, extra inputs, GPUs and nodes, grlo.train.rlvr.rlvr_image train_rlvr's image.
try:
    GRLO = W.grlo_engine(config)
    RLVR_IMAGE = rlvr_image(config, IMAGE)
except GrloError as e:
    sys.exit(f"error: {e}")


def settings_hash(*sections):
    """W.section_hash less the `fresh` switches (grlo.fresh, rlvr.fresh, read by the trainers from the config files):
    setting or removing one never reruns a finished training job; it only makes an unfinished one start over.
    """
    cfg = {
        k: (
            {kk: vv for kk, vv in v.items() if kk != "fresh"}
            if isinstance(v, dict)
            else v
        )
        for k, v in config.items()
    }
    return W.section_hash(cfg, *sections)


rule train_grlo:
    input:
        prompts=out("data/prompts/{backbone}/prepared.jsonl"),
        policy=out("models/{backbone}"),
        reward=out(f"models/{config['reward_model']}"),
        val=GRLO["val"],
    output:
        model=directory(out("checkpoints/{backbone}/grlo/final")),
        metrics=out("checkpoints/{backbone}/grlo/metrics.jsonl"),
    log:
        log_path("train_grlo", "{backbone}"),
    benchmark:
        bench_path("train_grlo", "{backbone}")
    priority: 10  # the longest job, and the GRLO -> RLVR row waits on it: started as soon as its inputs exist
    conda:
        ENV
    container:
        GRLO["image"]
    threads: config["resources"].get("threads_grlo", 16)  # capped at --cores by Snakemake
    resources:
        gpu=GRLO["gpus"],
        nodes=GRLO["nodes"],
    params:
        config=CFG,
        settings=settings_hash("grlo", "reward_model", "seed"),
        out=out("checkpoints/{backbone}/grlo"),
        device=out("benchmarks/train_grlo/{backbone}.device.json"),
        val=lambda w, input: f"--val-data {input.val}" if input.val else "",
    shell:
        "grlo train-grlo --config {params.config} --backbone {wildcards.backbone} --prompts {input.prompts}"
        " --policy-init {input.policy} --reward-model {input.reward} --output-dir {params.out} {params.val}"
        " --device-record {params.device} --threads {threads} > {log} 2>&1"


rule download_rlvr_data:
    output:
        data=out("data/rlvr/train.jsonl"),
        stats=out("data/rlvr/stats.json"),
    log:
        log_path("download_rlvr_data", "all"),
    conda:
        ENV
    container:
        IMAGE
    params:
        config=CFG,
        settings=W.section_hash(config, "rlvr"),
    shell:
        "grlo download-rlvr-data --config {params.config} --output {output.data} --stats {output.stats} > {log} 2>&1"


rule train_rlvr:
    input:
        init=lambda w: out(W.rlvr_init_path(w.backbone, w.stage)),
        data=out("data/rlvr/train.jsonl"),
        verifier=W.rlvr_verifier_input(config),
    output:
        model=directory(out("checkpoints/{backbone}/{stage}/final")),
        metrics=out("checkpoints/{backbone}/{stage}/metrics.jsonl"),
    log:
        log_path("train_rlvr", "{backbone}.{stage}"),
    benchmark:
        bench_path("train_{stage}", "{backbone}")
    wildcard_constraints:
        stage="rlvr|grlo-rlvr",
    priority: 10  # grlo-rlvr: the last training job, on the path to the last tables: started as soon as GRLO's model exists
    conda:
        ENV
    container:
        RLVR_IMAGE
    threads: config["resources"].get("threads_rlvr", 16)  # capped at --cores by Snakemake
    resources:
        gpu=W.rule_gpus(config)["train_rlvr"],
    params:
        config=CFG,
        settings=settings_hash("rlvr", "seed"),
        out=out("checkpoints/{backbone}/{stage}"),
        device=out("benchmarks/train_{stage}/{backbone}.device.json"),
        verifier=lambda w, input: (
            f"--verifier {input.verifier}" if input.verifier else ""
        ),
    shell:
        "grlo train-rlvr --config {params.config} --backbone {wildcards.backbone} --init {input.init}"
        " --data {input.data} --stage {wildcards.stage} --output-dir {params.out}"
        " --device-record {params.device} {params.verifier} --threads {threads} > {log} 2>&1"
