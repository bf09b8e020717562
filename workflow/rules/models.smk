rule fetch_model:
    output:
        directory(O + "models/{name}"),
    log:
        log_path("fetch_model", "{name}"),
    benchmark:
        bench_path("fetch_model", "{name}")
    resources:
        downloads=1,
    shell:
        "grlo fetch-model --config {CFG} --name {wildcards.name} --output {output} > {log} 2>&1"
