# The paper's statements T1-T7 (and our extensions E1-E4) checked against the figure tables:
# figures/claims.md and claims.json (figures/<name>/ for other configurations). Verdicts follow
# the rules of the configuration's `claims:` section, fixed before the runs are read;
# `snakemake --cores 2 claims` rebuilds only this and what it needs. Included after every concern
# file: a table of a figure that this configuration does not register (e.g. the paper figures'
# escape tables) is passed as `none` and its claims are inconclusive, saying why.

from adversary_dynamics.claims import cli_flags as claims_flags

CLAIM_TABLES = (
    {  # scripts/claims.py flag -> table path (None: not built by this configuration)
        "theory_runs": _registered_table("ext_theory", "pga"),
        "theory_hessian": _registered_table("ext_theory", "hessian"),
        "theory_maxima": _registered_table("ext_theory", "maxima"),
        "fig1_maxima": _registered_table("paper_fig1_landscapes", "maxima"),
        "escape_scale": _registered_table("paper_fig2_escape_by_scale", "escape"),
        "escape_training": _registered_table(
            "paper_fig3_escape_during_training", "escape"
        ),
        "training_runs": _registered_table("ext_training_convergence", "runs"),
        "pga_final": _registered_table("ext_pga_convergence", "final"),
        "landscape_regularity": _registered_table(
            "ext_landscape_statistics", "regularity"
        ),
    }
)


rule claims:
    input:
        **{k: v for k, v in CLAIM_TABLES.items() if v is not None},
        code=script_code("scripts/claims.py"),
    output:
        md=report(
            f"{FIGDIR}/claims.md",
            caption="../report/claims.rst",
            category="Claims",
            labels={"file": "claims.md"},
        ),
        json=report(
            f"{FIGDIR}/claims.json",
            caption="../report/claims_json.rst",
            category="Claims",
            labels={"file": "claims.json"},
        ),
    log:
        f"{LOGS}/claims.log",
    benchmark:
        f"{BENCH}/claims.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=light_mem_mb,
        runtime=light_runtime,
    params:
        tables=claims_table_args,
        rules=claims_flags(config["claims"], NAME),
    message:
        stage_message("claims", "verdicts on the paper's statements T1-T7")
    shell:
        "python scripts/claims.py {params.tables} {params.rules} "
        "--out-md {output.md} --out-json {output.json} > {log} 2>&1"
