# Theorem 3.1's setting (claims T1-T4, figure ext_theory): one job, every (activation, d, m, scale)
# as batched tensor programs; writes the figure's tables directly ({TABLES}/ext_theory/:
# pga.csv, hessian.csv, maxima.csv, provenance.json). Seconds on one core.

TH = config["theory"]
THEORY_TABLES = ("pga", "hessian", "maxima")


rule theory:
    input:
        code=script_code("scripts/theory.py"),
    output:
        **{k: f"{fig_tables('ext_theory')}/{k}.csv" for k in THEORY_TABLES},
        provenance=f"{fig_tables('ext_theory')}/provenance.json",
    log:
        f"{LOGS}/theory/theory.log",
    benchmark:
        f"{BENCH}/theory/theory.tsv"
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        mem_mb=lambda wildcards, attempt: 1500 * attempt,
        runtime=theory_job_minutes,
    params:
        out=tables_dir_of_output,
        args=theory_cli_args(),
    message:
        stage_message(
            "tables",
            "Theorem 3.1 setting: PGA to the sphere, Hessians, restart counts (T1-T4)",
        )
    shell:
        "exec python scripts/theory.py --out {params.out} {params.args} > {log} 2>&1"
