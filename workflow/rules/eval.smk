from grlo.eval.judge_server import judge_gpus


# One generation job per model: the model (or vLLM engine) loads once for all benchmarks.
rule generate:
    input:
        model=lambda w: out(W.resolve_eval_model(config, w.model)["path"]),
        data=expand(out("data/benchmarks/{bench}.jsonl"), bench=W.benchmarks(config)),
    output:
        gens=expand(
            out("generations/{{model}}/{bench}.jsonl"), bench=W.benchmarks(config)
        ),
        meta=expand(
            out("generations/{{model}}/{bench}.meta.json"), bench=W.benchmarks(config)
        ),
    log:
        log_path("generate", "{model}"),
    benchmark:
        bench_path("generate", "{model}")
    wildcard_constraints:
        model=r"(?!reference--)[a-z0-9.\-]+--[a-z0-9\-]+",  # reference--answers: rule reference_answers
    conda:
        ENV
    container:
        IMAGE
    threads: 1
    resources:
        gpu=W.rule_gpus(config)["generate"],
    params:
        config=CFG,
        benches=" ".join(W.benchmarks(config)),
        data_dir=lambda w, input: os.path.dirname(input.data[0]),
        out_dir=lambda w, output: os.path.dirname(output.gens[0]),
        settings=lambda w: W.eval_settings_hash(config, w.model),
        device=lambda w: out(f"benchmarks/generate/{w.model}.device.json"),
    shell:
        "grlo generate --config {params.config} --model {wildcards.model} --model-dir {input.model}"
        " --benchmarks {params.benches} --data-dir {params.data_dir} --output-dir {params.out_dir}"
        " --threads {threads} --device-record {params.device} > {log} 2>&1"


rule score:
    input:
        gens=out("generations/{model}/{bench}.jsonl"),
        data=out("data/benchmarks/{bench}.jsonl"),
        judge=lambda w: [out(p) for p in W.judge_inputs(config, w.bench)],
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
    resources:
        gpu=lambda w: judge_gpus(config, w.bench),  # a judge served by the scoring job (evaluation.judge.serve)
    params:
        config=CFG,
        judge_log=lambda w: log_path("score", f"{w.model}/{w.bench}.judge"),  # a served AlpacaEval judge's log
    shell:
        "grlo score --config {params.config} --benchmark {wildcards.bench} --data {input.data}"
        " --generations {input.gens} --output {output.summary} --samples {output.samples}"
        " --judge-log {params.judge_log} > {log} 2>&1"
