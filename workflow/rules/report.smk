rule table:
    input:
        scores=lambda w: W.table_scores(config, w.table),
        extra=lambda w: W.table_extra_inputs(config, w.table),
    output:
        csv=report(
            out("results/{table}.csv"),
            caption="../report/tables.rst",
            category="Tables",
        ),
        md=out("results/{table}.md"),
    log:
        log_path("table", "{table}"),
    wildcard_constraints:
        table="table[2-5]",
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


# Table 1 also writes a tidy companion (n, k and standard error per cell).
use rule table as table1 with:
    output:
        csv=report(
            out("results/{table}.csv"),
            caption="../report/tables.rst",
            category="Tables",
        ),
        md=out("results/{table}.md"),
        cells=out("results/{table}.cells.csv"),
        cells_md=out("results/{table}.cells.md"),
    wildcard_constraints:
        table="table1",


rule claims:
    input:
        tables=expand(out("results/table{i}.csv"), i=range(1, 5)),
        scores=W.table_scores(config, "table1"),
        extra=W.table_extra_inputs(config, "table2"),
    output:
        csv=report(
            out("results/claims.csv"),
            caption="../report/claims.rst",
            category="Claims",
        ),
        md=out("results/claims.md"),
    log:
        log_path("claims", "all"),
    conda:
        ENV
    container:
        IMAGE
    params:
        config=CFG,
        extra=W.table_extra_args(config, "table2"),
        tables=lambda w, output: os.path.dirname(output.csv),
    shell:
        "grlo claims --config {params.config} --scores {input.scores} {params.extra}"
        " --tables-dir {params.tables} --output {output.csv} > {log} 2>&1"


rule gpu_hours:
    input:
        W.training_metrics(config),
        W.score_files(config),
    output:
        csv=report(
            out("results/gpu_hours.csv"),
            caption="../report/gpu_hours.rst",
            category="Cost",
        ),
        md=out("results/gpu_hours.md"),
        jobs=out("results/gpu_hours_jobs.csv"),
    log:
        log_path("gpu_hours", "all"),
    conda:
        ENV
    container:
        IMAGE
    params:
        config=CFG,
        bench=out("benchmarks"),
    shell:
        "grlo gpu-hours --config {params.config} --benchmarks-dir {params.bench}"
        " --output {output.csv} --jobs-output {output.jobs} > {log} 2>&1"


rule forecast:
    output:
        csv=report(
            out("results/forecast.csv"),
            caption="../report/forecast.rst",
            category="Cost",
        ),
        md=out("results/forecast.md"),
    log:
        log_path("forecast", "all"),
    conda:
        ENV
    container:
        IMAGE
    params:
        config=CFG,
        settings=W.section_hash(config, "grlo", "rlvr", "report", "evaluation"),
    shell:
        "grlo forecast --config {params.config} --output {output.csv} > {log} 2>&1"


rule figures:
    input:
        metrics=W.training_metrics(config),
        scores=W.score_files(config),
    output:
        report(
            directory(out("results/figures")),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
    log:
        log_path("figures", "all"),
    conda:
        ENV
    container:
        IMAGE
    params:
        config=CFG,
        bench=out("benchmarks"),
    shell:
        "grlo figures --config {params.config} --metrics {input.metrics} --scores {input.scores}"
        " --benchmarks-dir {params.bench} --output-dir {output} > {log} 2>&1"
