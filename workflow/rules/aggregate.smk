# Raw runs -> one set of tidy tables per figure (docs/tables.md). Notebooks read only these.
# The aggregation is library code (src/adversary_dynamics/tables.py); scripts/aggregate.py is its CLI.


rule aggregate_ext_pga_convergence:
    input:
        restarts=all_probe("restarts.csv"),
        curves=all_probe("curves.npz"),
        code=script_code("scripts/aggregate.py"),
    output:
        curves=f"{TABLES}/ext_pga_convergence/curves.csv",
        final=f"{TABLES}/ext_pga_convergence/final.csv",
        provenance=f"{TABLES}/ext_pga_convergence/provenance.json",
    log:
        f"{LOGS}/aggregate/ext_pga_convergence.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=light_mem_mb,
        runtime=light_runtime,
    params:
        config=config_json,
        runs=runs_spec("probe"),
        max_steps=config["probe"]["max_steps"],
    message:
        stage_message("tables", "the tables of ext_pga_convergence")
    shell:
        "python scripts/aggregate.py ext_pga_convergence --runs {params.runs} --max-steps {params.max_steps} "
        "--out-curves {output.curves} --out-final {output.final} --out-provenance {output.provenance} --config-json {params.config} > {log} 2>&1"


rule aggregate_ext_training_convergence:
    input:
        steps=all_train("steps.csv"),
        epochs=all_train("epochs.csv"),
        status=all_train("status.json"),
        code=script_code("scripts/aggregate.py"),
    output:
        steps=f"{TABLES}/ext_training_convergence/steps.csv",
        epochs=f"{TABLES}/ext_training_convergence/epochs.csv",
        runs=f"{TABLES}/ext_training_convergence/runs.csv",
        provenance=f"{TABLES}/ext_training_convergence/provenance.json",
    log:
        f"{LOGS}/aggregate/ext_training_convergence.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=light_mem_mb,
        runtime=light_runtime,
    params:
        config=config_json,
        runs=runs_spec("train"),
        threshold=config["train"]["threshold"],
    message:
        stage_message("tables", "the tables of ext_training_convergence")
    shell:
        "python scripts/aggregate.py ext_training_convergence --runs {params.runs} --threshold {params.threshold} "
        "--out-steps {output.steps} --out-epochs {output.epochs} --out-runs {output.runs} --out-provenance {output.provenance} --config-json {params.config} > {log} 2>&1"


rule aggregate_ext_landscape_statistics:
    input:
        regularity=all_probe("regularity.csv"),
        landscape=all_probe("landscape.npz"),
        code=script_code("scripts/aggregate.py"),
    output:
        grid=f"{TABLES}/ext_landscape_statistics/grid.csv",
        circle=f"{TABLES}/ext_landscape_statistics/circle.csv",
        traj=f"{TABLES}/ext_landscape_statistics/traj.csv",
        regularity=f"{TABLES}/ext_landscape_statistics/regularity.csv",
        provenance=f"{TABLES}/ext_landscape_statistics/provenance.json",
    log:
        f"{LOGS}/aggregate/ext_landscape_statistics.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=light_mem_mb,
        runtime=light_runtime,
    params:
        config=config_json,
        runs=runs_spec("probe"),
    message:
        stage_message("tables", "the tables of ext_landscape_statistics")
    shell:
        "python scripts/aggregate.py ext_landscape_statistics --runs {params.runs} --out-grid {output.grid} "
        "--out-circle {output.circle} --out-traj {output.traj} --out-regularity {output.regularity} "
        "--out-provenance {output.provenance} --config-json {params.config} > {log} 2>&1"


register_figure(
    "ext_pga_convergence",
    tables={k: f"{TABLES}/ext_pga_convergence/{k}.csv" for k in ("curves", "final")},
    provenance=f"{TABLES}/ext_pga_convergence/provenance.json",
)
register_figure(
    "ext_training_convergence",
    tables={
        k: f"{TABLES}/ext_training_convergence/{k}.csv"
        for k in ("steps", "epochs", "runs")
    },
    provenance=f"{TABLES}/ext_training_convergence/provenance.json",
)
register_figure(
    "ext_landscape_statistics",
    tables={
        k: f"{TABLES}/ext_landscape_statistics/{k}.csv"
        for k in ("grid", "circle", "traj", "regularity")
    },
    provenance=f"{TABLES}/ext_landscape_statistics/provenance.json",
)
register_figure(  # the tables come straight from rule theory (workflow/rules/theory.smk)
    "ext_theory",
    tables={k: f"{TABLES}/ext_theory/{k}.csv" for k in ("pga", "hessian", "maxima")},
    provenance=f"{TABLES}/ext_theory/provenance.json",
)
