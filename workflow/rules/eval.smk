rule generate:
    input:
        model=lambda w: O + W.resolve_eval_model(config, w.model)["path"],
        data=O + "data/benchmarks/{bench}.jsonl",
    output:
        gens=O + "generations/{model}/{bench}.jsonl",
        meta=O + "generations/{model}/{bench}.meta.json",
    log:
        log_path("generate", "{model}/{bench}"),
    benchmark:
        bench_path("generate", "{model}/{bench}")
    params:
        cfg=lambda w: W.eval_settings_hash(config, w.model, w.bench),
        device=lambda w: O + f"benchmarks/generate/{w.model}/{w.bench}.device.json",
    threads: 1
    resources:
        gpu=config["resources"]["gpus_eval"],
    shell:
        "grlo generate --config {CFG} --model {wildcards.model} --model-dir {input.model}"
        " --benchmark {wildcards.bench} --data {input.data} --output {output.gens}"
        " --threads {threads} --device-record {params.device} > {log} 2>&1"


rule score:
    input:
        gens=O + "generations/{model}/{bench}.jsonl",
        data=O + "data/benchmarks/{bench}.jsonl",
    output:
        summary=O + "scores/{model}/{bench}.json",
        samples=O + "scores/{model}/{bench}.samples.jsonl",
    log:
        log_path("score", "{model}/{bench}"),
    benchmark:
        bench_path("score", "{model}/{bench}")
    shell:
        "grlo score --config {CFG} --benchmark {wildcards.bench} --data {input.data}"
        " --generations {input.gens} --output {output.summary} --samples {output.samples} > {log} 2>&1"
