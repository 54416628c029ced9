# Raw runs -> one set of tidy tables per extension figure (docs/tables.md), in the tables stage's
# folder. Notebooks read only these. The aggregation is library code
# (src/adversary_dynamics/figures/tables.py); scripts/aggregate.py is its CLI. One rule per figure, named
# <figure>_tables (stage_registry.STAGES).

for _fig, _stage, _inputs in (
    (
        "ext_pga_convergence",
        "probe",
        {"restarts": "restarts.csv", "curves": "curves.npz"},
    ),
    (
        "ext_training_convergence",
        "train",
        {"steps": "steps.csv", "epochs": "epochs.csv", "status": "status.json"},
    ),
    (
        "ext_landscape_statistics",
        "probe",
        {"regularity": "regularity.csv", "landscape": "landscape.npz"},
    ),
):

    rule:
        name:
            f"{_fig}_tables"
        input:
            **{k: all_runs(_stage, f) for k, f in _inputs.items()},
        output:
            **figure_tables(_fig),
            provenance=f"{stage_dir(_fig + '_tables')}/provenance.json",
        log:
            stage_log(f"{_fig}_tables", "tables.log"),
        benchmark:
            stage_bench(f"{_fig}_tables", "tables.tsv")
        conda:
            CONDA_ENV
        threads: 1
        resources:
            mem_mb=light_mem_mb,
            runtime=light_runtime,
        params:
            figure=_fig,  # not an f-string in `shell:`: Snakemake formats it when the job runs
            doc=stage_params(f"{_fig}_tables"),
            runs=runs_spec(_stage),
            outs=" ".join(
                f"--out-{k} {v}" for k, v in figure_tables(_fig).items()
            ),
        message:
            stage_message("tables", f"the tables of {_fig}")
        shell:
            "python scripts/aggregate.py {params.figure} --params {params.doc:q} --runs {params.runs} "
            "{params.outs} --out-provenance {output.provenance} > {log} 2>&1"
