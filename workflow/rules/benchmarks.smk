rule download_benchmark:
    output:
        O + "data/benchmarks/{bench}.jsonl",
    log:
        log_path("download_benchmark", "{bench}"),
    params:
        cfg=lambda w: W.section_hash(config, "evaluation"),
    shell:
        "grlo download-benchmark --config {CFG} --benchmark {wildcards.bench} --output {output} > {log} 2>&1"
