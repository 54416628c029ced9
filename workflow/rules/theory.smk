# Theorem 3.1's setting (claims T1-T4, figure ext_theory): one job, every (activation, d, m, scale)
# as batched tensor programs; writes the figure's tables directly (stage `theory`: pga.csv,
# hessian.csv, maxima.csv, provenance.json). Seconds on one core.

rule theory:
    output:
        **figure_tables("ext_theory"),
        provenance=f"{stage_dir('theory')}/provenance.json",
    log:
        stage_log("theory", "theory.log"),
    benchmark:
        stage_bench("theory", "theory.tsv")
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        **stage_resources("theory"),
    params:
        out=tables_dir_of_output,
        doc=stage_params("theory"),
    message:
        stage_message(
            "tables",
            "Theorem 3.1 setting: PGA to the sphere, Hessians, restart counts (T1-T4)",
        )
    shell:
        "exec python scripts/theory.py --params {params.doc:q} --out {params.out} > {log} 2>&1"
