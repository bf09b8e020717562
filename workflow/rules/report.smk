rule table:
    input:
        scores=lambda w: W.table_scores(config, w.table),
        extra=lambda w: W.table_extra_inputs(config, w.table),
    output:
        csv=report(
            out("results/{table}.csv"),
            caption="../report/tables.rst",
            category="2 Tables",
            subcategory="CSV downloads",
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
            category="2 Tables",
            subcategory="CSV downloads",
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
            category="1 Verdicts",
            subcategory="CSV downloads",
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
            category="5 Cost",
            subcategory="CSV downloads",
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
            category="5 Cost",
            subcategory="CSV downloads",
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
            category="4 Figures",
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


# --- HTML pages for the report (`snakemake --report report.html|report.zip` shows HTML items inline) -----------
# overview.html (claims with verdicts + table 1) is also embedded in the report's landing text (workflow.rst).
# The protocol card (results/protocol.md, rule protocol_card in protocol.smk) gets a page too.
PROTOCOL_CARD = out("results/protocol.md")


rule report_html:
    input:
        claims=out("results/claims.csv"),
        tables=expand(out("results/table{i}.csv"), i=range(1, 6)),
        forecast=out("results/forecast.csv"),
        gpu_hours=out("results/gpu_hours.csv"),
        protocol=PROTOCOL_CARD,
    output:
        overview=report_page("overview", "1 Verdicts", "overview"),
        claims=report_page("claims", "1 Verdicts", "claims"),
        tables=[
            report_page(f"table{i}", "2 Tables", "tables_html") for i in range(1, 6)
        ],
        cost=report_page("cost", "5 Cost", "cost"),
        protocol=report_page("protocol", "3 Protocol", "protocol"),
    log:
        log_path("report_html", "all"),
    conda:
        ENV
    container:
        IMAGE
    params:
        out_dir=lambda w, output: os.path.dirname(output.overview),
    shell:
        "grlo render-html --claims {input.claims} --tables {input.tables} --forecast {input.forecast}"
        " --gpu-hours {input.gpu_hours} --protocol {input.protocol} --output-dir {params.out_dir} > {log} 2>&1"


# Per-problem browser: one page per benchmark, every evaluated model's answers side by side, with the known-answer
# row (reference solutions scored as generations) where the benchmark has one.
rule browse:
    input:
        samples=lambda w: [
            out(f"scores/{m}/{w.bench}.samples.jsonl")
            for m in W.browse_models(config, w.bench)
        ],
        data=out("data/benchmarks/{bench}.jsonl"),
    output:
        report(
            out("results/browser/{bench}.html"),
            caption="../report/browser.rst",
            category="6 Problems",
            labels={"benchmark": "{bench}"},
        ),
    log:
        log_path("browse", "{bench}"),
    conda:
        ENV
    container:
        IMAGE
    params:
        config=CFG,
    shell:
        "grlo browse --benchmark {wildcards.bench} --config {params.config} --samples {input.samples}"
        " --data {input.data} --output {output} > {log} 2>&1"


# --- Committed results/ (what a reviewer opens before any run), from the paper config, without GPUs -----------------
# `snakemake --cores 1 committed_results` rewrites them; tests/test_results_committed.py fails when they are stale.
# The claims with no inputs say "not run" (results/preview/: a paper run writes results/claims.csv beside it).
rule claims_preview:
    output:
        csv=out("results/preview/claims.csv"),
        md=out("results/preview/claims.md"),
    log:
        log_path("claims_preview", "all"),
    conda:
        ENV
    container:
        IMAGE
    params:
        config=CFG,
        settings=GC.config_hash(config),  # the header carries the whole config's hash
    shell:
        "grlo claims --config {params.config} --output {output.csv} > {log} 2>&1"


rule committed_results:
    input:
        out("results/forecast.csv"),
        out("results/preview/claims.csv"),
        PROTOCOL_CARD,
