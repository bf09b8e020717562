rule table:
    input:
        scores=lambda w: W.table_scores(config, w.table),
        extra=lambda w: W.table_extra_inputs(config, w.table),
    output:
        csv=out("results/{table}.csv"),
        md=out("results/{table}.md"),
    log:
        log_path("table", "{table}"),
    wildcard_constraints:
        table="table[1-5]",
    conda:
        ENV
    container:
        IMAGE
    params:
        config=CFG,
        extra=lambda w: W.table_extra_args(config, w.table),
    shell:
        "grlo table --name {wildcards.table} --config {params.config} --scores {input.scores} {params.extra}"
        " --output {output.csv} > {log} 2>&1"
