rule download_benchmark:
    output:
        out("data/benchmarks/{bench}.jsonl"),
    log:
        log_path("download_benchmark", "{bench}"),
    conda:
        ENV
    container:
        IMAGE
    params:
        config=CFG,
        settings=lambda w: W.benchmark_hash(config, w.bench),
    shell:
        "grlo download-benchmark --config {params.config} --benchmark {wildcards.bench} --output {output} > {log} 2>&1"
