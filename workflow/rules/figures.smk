# One papermill notebook per figure; each rule is named after its figure, so
# `snakemake fig2_training_convergence` rebuilds that figure and only what it needs.
# The executed notebook goes to the log; the notebook itself writes PDF and PNG atomically.
# Beside each figure, <figure>.provenance.json names the configuration, the code version and
# every run its numbers come from.

FIGURE_TABLES = {
    "fig1_pga_convergence": {
        "curves": f"{TABLES}/fig1_curves.csv",
        "final": f"{TABLES}/fig1_final.csv",
    },
    "fig2_training_convergence": {
        "steps": f"{TABLES}/fig2_steps.csv",
        "epochs": f"{TABLES}/fig2_epochs.csv",
        "runs": f"{TABLES}/fig2_runs.csv",
    },
    "fig3_landscape": {
        "grid": f"{TABLES}/fig3_grid.csv",
        "circle": f"{TABLES}/fig3_circle.csv",
        "traj": f"{TABLES}/fig3_traj.csv",
        "regularity": f"{TABLES}/fig3_regularity.csv",
    },
    "fig4_theory": {
        "theory": f"{TABLES}/fig4_theory.csv",
    },
}

for fig, tables in FIGURE_TABLES.items():

    rule:
        name:
            fig
        input:
            **tables,
            notebook=f"notebooks/{fig}.ipynb",
            style=f"{LIB}/plotting.py",
            provenance=f"{TABLES}/{fig.split('_')[0]}.provenance.json",
        output:
            pdf=figure(fig, "pdf"),
            png=report(
                figure(fig, "png"),
                caption=f"../report/{fig}.rst",
                category="Figures",
                labels={"figure": fig},
            ),
            provenance=figure(fig, "provenance.json"),
        log:
            notebook=f"{LOGS}/notebooks/{fig}.ipynb",
            stderr=f"{LOGS}/notebooks/{fig}.log",
        conda:
            CONDA_ENV
        threads: 1
        resources:
            mem_mb=light_mem_mb,
            runtime=light_runtime,
        params:
            nb=nb_params,
        shell:
            "papermill {input.notebook} {log.notebook} -k python3 --no-progress-bar {params.nb} "
            "> {log.stderr} 2>&1 && cp {input.provenance} {output.provenance}.tmp "
            "&& mv {output.provenance}.tmp {output.provenance}"
