rule download_prompts:
    output:
        O + "data/prompts/raw.jsonl",
    log:
        log_path("download_prompts", "all"),
    params:
        cfg=W.section_hash(config, "prompts"),
    shell:
        "grlo download-prompts --config {CFG} --output {output} > {log} 2>&1"


rule prepare_prompts:
    input:
        raw=O + "data/prompts/raw.jsonl",
        model=O + "models/{backbone}",
    output:
        prompts=O + "data/prompts/{backbone}/prepared.jsonl",
        stats=O + "data/prompts/{backbone}/stats.json",
    log:
        log_path("prepare_prompts", "{backbone}"),
    benchmark:
        bench_path("prepare_prompts", "{backbone}")
    params:
        cfg=W.section_hash(config, "prompts"),
    shell:
        "grlo prepare-prompts --config {CFG} --input {input.raw} --tokenizer {input.model}"
        " --output {output.prompts} --stats {output.stats} > {log} 2>&1"
