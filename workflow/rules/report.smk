rule table:
    input:
        scores=lambda w: W.table_scores(config, w.table),
        extra=lambda w: W.table_extra_inputs(config, w.table),
    output:
        csv=O + "results/{table}.csv",
        md=O + "results/{table}.md",
    wildcard_constraints:
        table="table[1-5]",
    log:
        log_path("table", "{table}"),
    params:
        extra=lambda w, input: W.table_extra_args(config, w.table),
    shell:
        "grlo table --name {wildcards.table} --config {CFG} --scores {input.scores} {params.extra}"
        " --output {output.csv} > {log} 2>&1"
