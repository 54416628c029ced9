# The paper's statements T1-T7 (and our extensions E1-E4) checked against the figure tables:
# figures/claims.md and claims.json (figures/<name>/ for other configurations). Verdicts follow
# the rules of the configuration's `claims:` section, fixed before the runs are read (stage
# `claims` of adversary_dynamics.pipeline.stages: its key covers the rules and the tables' keys);
# `snakemake --cores 2 claims` rebuilds only this and what it needs.


rule claims:
    input:
        **{
            flag: f"{stage_dir(FIGURE_TABLES_STAGE[fig])}/{table}.csv"
            for flag, (fig, table) in stage_registry.CLAIM_TABLES.items()
        },
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
        stage_log("claims", f"{NAME}.log"),
    benchmark:
        stage_bench("claims", f"{NAME}.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=light_mem_mb,
        runtime=light_runtime,
    params:
        doc=stage_params("claims"),
        tables=lambda wildcards, input: " ".join(
            f"--{k.replace('_', '-')} {input[k]}" for k in stage_registry.CLAIM_TABLES
        ),
        name=NAME,
    message:
        stage_message("claims", "verdicts on the paper's statements T1-T7")
    shell:
        "python scripts/claims.py --params {params.doc:q} {params.tables} --config-name {params.name} "
        "--out-md {output.md} --out-json {output.json} > {log} 2>&1"
