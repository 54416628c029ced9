# The theory setting: one job for every (dimension d, width m); all scales and trials of a
# (d, m) run as one batched tensor program.


rule theory:
    input:
        code=script_code("scripts/theory.py"),
    output:
        tables=all_theory(),
    log:
        f"{LOGS}/theory/theory.log",
    benchmark:
        f"{BENCH}/theory/theory.tsv"
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        gpu=use_gpu(),
        mem_mb=theory_mem_mb,
        runtime=theory_runtime,
    params:
        out_root=theory_root,
        args=theory_args,
    shell:
        "python scripts/theory.py --out-root {params.out_root} {params.args} > {log} 2>&1"
