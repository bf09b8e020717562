# Known-answer row (config evaluation.known_answer_row, grlo/eval/reference.py): every benchmark's reference
# solution written as the generations of the pseudo-model reference--answers, then scored by the ordinary score
# rule. Table 1 shows it; it must be 100 wherever a reference exists (tests/test_smoke_known_answer.py).
if W.reference_benchmarks(config):

    rule reference_answers:
        input:
            data=expand(
                out("data/benchmarks/{bench}.jsonl"),
                bench=W.reference_benchmarks(config),
            ),
        output:
            gens=expand(
                out("generations/reference--answers/{bench}.jsonl"),
                bench=W.reference_benchmarks(config),
            ),
            meta=expand(
                out("generations/reference--answers/{bench}.meta.json"),
                bench=W.reference_benchmarks(config),
            ),
        log:
            log_path("reference_answers", "all"),
        conda:
            ENV
        container:
            IMAGE
        params:
            config=CFG,
            benches=" ".join(W.reference_benchmarks(config)),
            data_dir=lambda w, input: os.path.dirname(input.data[0]),
            out_dir=lambda w, output: os.path.dirname(output.gens[0]),
        shell:
            "grlo reference-answers --config {params.config} --benchmarks {params.benches}"
            " --data-dir {params.data_dir} --output-dir {params.out_dir} > {log} 2>&1"
