rule generate:
    input:
        model=lambda w: out(W.resolve_eval_model(config, w.model)["path"]),
        data=out("data/benchmarks/{bench}.jsonl"),
    output:
        gens=out("generations/{model}/{bench}.jsonl"),
        meta=out("generations/{model}/{bench}.meta.json"),
    log:
        log_path("generate", "{model}/{bench}"),
    benchmark:
        bench_path("generate", "{model}/{bench}")
    conda:
        ENV
    container:
        IMAGE
    threads: 1
    resources:
        gpu=config["resources"]["gpus_eval"],
    params:
        config=CFG,
        settings=lambda w: W.eval_settings_hash(config, w.model, w.bench),
        device=lambda w: out(f"benchmarks/generate/{w.model}/{w.bench}.device.json"),
    shell:
        "grlo generate --config {params.config} --model {wildcards.model} --model-dir {input.model}"
        " --benchmark {wildcards.bench} --data {input.data} --output {output.gens}"
        " --threads {threads} --device-record {params.device} > {log} 2>&1"


rule score:
    input:
        gens=out("generations/{model}/{bench}.jsonl"),
        data=out("data/benchmarks/{bench}.jsonl"),
    output:
        summary=out("scores/{model}/{bench}.json"),
        samples=out("scores/{model}/{bench}.samples.jsonl"),
    log:
        log_path("score", "{model}/{bench}"),
    benchmark:
        bench_path("score", "{model}/{bench}")
    conda:
        ENV
    container:
        IMAGE
    params:
        config=CFG,
    shell:
        "grlo score --config {params.config} --benchmark {wildcards.bench} --data {input.data}"
        " --generations {input.gens} --output {output.summary} --samples {output.samples} > {log} 2>&1"
