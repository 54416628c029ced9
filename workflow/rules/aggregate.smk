# Raw runs -> one set of tidy tables per figure (docs/tables.md). Notebooks read only these.


rule aggregate_fig1:
    input:
        restarts=all_probe("restarts.csv"),
        curves=all_probe("curves.npz"),
        code=CODE_AGG,
    output:
        curves=f"{TABLES}/fig1_curves.csv",
        final=f"{TABLES}/fig1_final.csv",
        provenance=f"{TABLES}/fig1.provenance.json",
    log:
        f"{LOGS}/aggregate/fig1.log",
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
    shell:
        "python scripts/aggregate.py fig1 --runs {params.runs} --max-steps {params.max_steps} "
        "--out-curves {output.curves} --out-final {output.final} --out-provenance {output.provenance} --config-json {params.config} > {log} 2>&1"


rule aggregate_fig2:
    input:
        steps=all_train("steps.csv"),
        epochs=all_train("epochs.csv"),
        status=all_train("status.json"),
        code=CODE_AGG,
    output:
        steps=f"{TABLES}/fig2_steps.csv",
        epochs=f"{TABLES}/fig2_epochs.csv",
        runs=f"{TABLES}/fig2_runs.csv",
        provenance=f"{TABLES}/fig2.provenance.json",
    log:
        f"{LOGS}/aggregate/fig2.log",
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
    shell:
        "python scripts/aggregate.py fig2 --runs {params.runs} --threshold {params.threshold} "
        "--out-steps {output.steps} --out-epochs {output.epochs} --out-runs {output.runs} --out-provenance {output.provenance} --config-json {params.config} > {log} 2>&1"


rule aggregate_fig3:
    input:
        regularity=all_probe("regularity.csv"),
        landscape=all_probe("landscape.npz"),
        code=CODE_AGG,
    output:
        grid=f"{TABLES}/fig3_grid.csv",
        circle=f"{TABLES}/fig3_circle.csv",
        traj=f"{TABLES}/fig3_traj.csv",
        regularity=f"{TABLES}/fig3_regularity.csv",
        provenance=f"{TABLES}/fig3.provenance.json",
    log:
        f"{LOGS}/aggregate/fig3.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=light_mem_mb,
        runtime=light_runtime,
    params:
        config=config_json,
        runs=runs_spec("probe"),
    shell:
        "python scripts/aggregate.py fig3 --runs {params.runs} --out-grid {output.grid} "
        "--out-circle {output.circle} --out-traj {output.traj} --out-regularity {output.regularity} "
        "--out-provenance {output.provenance} --config-json {params.config} > {log} 2>&1"


rule aggregate_fig4:
    input:
        tables=all_theory(),
        code=CODE_AGG,
    output:
        theory=f"{TABLES}/fig4_theory.csv",
        provenance=f"{TABLES}/fig4.provenance.json",
    log:
        f"{LOGS}/aggregate/fig4.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=light_mem_mb,
        runtime=light_runtime,
    params:
        config=config_json,
        runs=theory_spec(),
    shell:
        "python scripts/aggregate.py fig4 --runs {params.runs} --out {output.theory} --out-provenance {output.provenance} --config-json {params.config} > {log} 2>&1"
