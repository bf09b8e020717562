rule download_prompts:
    output:
        out("data/prompts/raw.jsonl"),
    log:
        log_path("download_prompts", "all"),
    conda:
        ENV
    container:
        IMAGE
    params:
        config=CFG,
        settings=W.section_hash(config, "prompts"),
    shell:
        "grlo download-prompts --config {params.config} --output {output} > {log} 2>&1"


rule prepare_prompts:
    input:
        raw=out("data/prompts/raw.jsonl"),
        model=out("models/{backbone}"),
    output:
        prompts=out("data/prompts/{backbone}/prepared.jsonl"),
        stats=out("data/prompts/{backbone}/stats.json"),
    log:
        log_path("prepare_prompts", "{backbone}"),
    benchmark:
        bench_path("prepare_prompts", "{backbone}")
    priority: 10  # feeds train_grlo, the longest job (Snakemake does not pass a rule's priority to its inputs)
    conda:
        ENV
    container:
        IMAGE
    params:
        config=CFG,
        settings=W.section_hash(config, "prompts"),
    shell:
        "grlo prepare-prompts --config {params.config} --input {input.raw} --tokenizer {input.model}"
        " --output {output.prompts} --stats {output.stats} > {log} 2>&1"
