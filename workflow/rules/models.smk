rule fetch_model:
    output:
        directory(out("models/{name}")),
    log:
        log_path("fetch_model", "{name}"),
    benchmark:
        bench_path("fetch_model", "{name}")
    conda:
        ENV
    container:
        IMAGE
    resources:
        downloads=1,
    params:
        config=CFG,
    shell:
        "grlo fetch-model --config {params.config} --name {wildcards.name} --output {output} > {log} 2>&1"
