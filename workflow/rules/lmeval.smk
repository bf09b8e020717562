# The base model's few-shot GSM8K / MATH check with lm-eval, beside the Qwen3
# report's 87.79 / 54.10. Smoke mode runs the same rule on local task files (limit from evaluation.lmeval.limit).
rule lmeval_fewshot:
    input:
        model=out("models/{backbone}"),
    output:
        summary=out("results/lmeval/{backbone}.json"),
        table=out("results/lmeval/{backbone}.csv"),
    log:
        log_path("lmeval_fewshot", "{backbone}"),
    benchmark:
        bench_path("lmeval_fewshot", "{backbone}")
    conda:
        ENV
    container:
        IMAGE
    resources:
        gpu=W.rule_gpus(config)["lmeval_fewshot"],
    params:
        config=CFG,
        device=lambda w: out(f"benchmarks/lmeval_fewshot/{w.backbone}.device.json"),
    shell:
        "grlo lmeval-fewshot --config {params.config} --model-dir {input.model} --output {output.summary}"
        " --csv {output.table} --device-record {params.device} > {log} 2>&1"
