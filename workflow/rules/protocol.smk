# The evaluation protocol card (results/protocol.md): generated from the registries, the lock file and the config;
# no GPU, no downloads. Rebuilt whenever one of them changes.
from grlo import lock as GL


rule protocol_card:
    input:
        cfg=CFG,
        registries=[
            str(GC.REPO_ROOT / "grlo/registry/models.yaml"),
            str(GC.REPO_ROOT / "grlo/registry/benchmarks.yaml"),
        ],
        lock=lambda w: [
            p for p in [GL.lock_path(config)] if p is not None and p.is_file()
        ],
    output:
        out("results/protocol.md"),
    log:
        log_path("protocol_card", "protocol"),
    conda:
        ENV
    container:
        IMAGE
    shell:
        "grlo protocol-card --config {input.cfg} --output {output} > {log} 2>&1"
