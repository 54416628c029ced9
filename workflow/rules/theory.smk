# The theory setting: one job for every (dimension d, width m); all scales and trials of a
# (d, m) run as one batched tensor program.


rule theory:
    input:
        code=CODE_THEORY,
    output:
        tables=all_theory(),
    params:
        out_root=f"{RESULTS}/theory",
        args=theory_args,
    log:
        f"{LOGS}/theory/theory.log",
    benchmark:
        f"{BENCH}/theory/theory.tsv"
    threads: config["threads"]
    resources:
        gpu=use_gpu(),
        mem_mb=theory_mem_mb,
        runtime=theory_runtime,
    shell:
        "python scripts/theory.py --out-root {params.out_root} {params.args} > {log} 2>&1"
