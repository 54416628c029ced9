# The paper's claims, checked against the aggregated tables: figures/claims.md and claims.json
# (figures/<name>/ for other configurations). Verdicts follow the rules of the configuration's
# `claims:` section, fixed before the runs are read; `snakemake claims` rebuilds only this.

from adversary_dynamics.claims import cli_flags as claims_flags


rule claims:
    input:
        fig1_final=f"{TABLES}/ext_pga_convergence/final.csv",
        fig2_runs=f"{TABLES}/ext_training_convergence/runs.csv",
        fig3_regularity=f"{TABLES}/ext_landscape_statistics/regularity.csv",
        fig4_theory=f"{TABLES}/ext_theory/theory.csv",
        code=script_code("scripts/claims.py"),
    output:
        md=report(
            f"{FIGDIR}/claims.md", caption="../report/claims.rst", category="Claims"
        ),
        json=f"{FIGDIR}/claims.json",
    log:
        f"{LOGS}/claims.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=light_mem_mb,
        runtime=light_runtime,
    params:
        rules=claims_flags(config["claims"], NAME),
    shell:
        "python scripts/claims.py --fig1-final {input.fig1_final} --fig2-runs {input.fig2_runs} "
        "--fig3-regularity {input.fig3_regularity} --fig4-theory {input.fig4_theory} {params.rules} "
        "--out-md {output.md} --out-json {output.json} > {log} 2>&1"
