# One papermill notebook per figure. Two rules per figure:
#   <figure>_notebook  runs notebooks/<figure>.ipynb on the figure's tables into the figure's stage
#                      folder, results/stages/<figure>/<key>/ (the key covers the tables' key and the
#                      notebook's code, so two configurations with the same tables share the figure)
#   <figure>           publishes it as {FIGDIR}/<figure>.pdf/.png/.provenance.json (three copies in
#                      the Snakemake process's shell: no Python starts), so `snakemake --cores 2
#                      <figure>` rebuilds that figure and only what it needs.
# This file is included last. The executed notebook goes to the log; the notebook itself writes PDF
# and PNG atomically. Notebooks run on the kernel workflow/jupyter/kernels/adversary-dynamics (the
# job's own `python`), never on whatever `python3` kernel spec a machine has registered.
# Beside each figure, <figure>.provenance.json names the stages, the code version
# and every run its numbers come from.

for _fig in FIGURES:
    _tables = FIGURE_TABLES_STAGE[_fig]

    rule:
        name:
            f"{_fig}_notebook"
        input:
            **figure_tables(_fig),
            notebook=f"notebooks/{_fig}.ipynb",
            provenance=f"{stage_dir(_tables)}/provenance.json",
        output:
            pdf=f"{stage_dir(_fig)}/{_fig}.pdf",
            png=f"{stage_dir(_fig)}/{_fig}.png",
            provenance=f"{stage_dir(_fig)}/{_fig}.provenance.json",
        log:
            notebook=stage_log(_fig, f"{_fig}.ipynb"),
            stderr=stage_log(_fig, f"{_fig}.log"),
        benchmark:
            stage_bench(_fig, "notebook.tsv")
        conda:
            CONDA_ENV
        threads: 1
        resources:
            mem_mb=light_mem_mb,
            runtime=light_runtime,
        params:
            nb=nb_params,
            # the workflow's own interpreter runs the notebook, whatever `python3` kernel is
            # registered elsewhere: the kernel spec in workflow/jupyter starts `python` from the job's
            # PATH, the one that runs papermill (recorded in the figure's provenance)
            kernels=str(Path(workflow.basedir) / "workflow/jupyter"),
            kernel="adversary-dynamics",
        message:
            stage_message(
                "figure",
                f"notebook {_fig} -> {stage_dir(_fig)}/{_fig}.png, .pdf",
                log="{log.stderr} (executed notebook: {log.notebook})",
            )
        shell:
            "JUPYTER_PATH={params.kernels:q} python -m papermill {input.notebook} {log.notebook} "
            "-k {params.kernel} --no-progress-bar {params.nb} > {log.stderr} 2>&1 "
            "&& python scripts/figure_provenance.py {input.provenance} {output.provenance} {params.kernel}"

    rule:
        name:
            _fig
        localrule: True
        input:
            pdf=f"{stage_dir(_fig)}/{_fig}.pdf",
            png=f"{stage_dir(_fig)}/{_fig}.png",
            provenance=f"{stage_dir(_fig)}/{_fig}.provenance.json",
        output:
            pdf=report(
                figure(_fig, "pdf"),
                caption=f"../report/{_fig}.rst",
                category="Figures",
                labels={"figure": _fig, "format": "PDF"},
            ),
            png=report(
                figure(_fig, "png"),
                caption=f"../report/{_fig}.rst",
                category="Figures",
                labels={"figure": _fig, "format": "PNG"},
            ),
            provenance=report(
                figure(_fig, "provenance.json"),
                caption="../report/provenance.rst",
                category="Provenance",
                labels={"figure": _fig},
            ),
        log:
            f"{LOGS}/figures/{_fig}.log",
        benchmark:
            # keyed by the figure's stage key: publishing another version of the figure keeps this one's
            f"{BENCH}/figures/{_fig}/{KEYED[_fig].key}.tsv"
        conda:
            CONDA_ENV
        message:
            stage_message("publishing", f"{_fig} -> {FIGDIR}/")
        shell:
            "cp {input.pdf} {output.pdf} && cp {input.png} {output.png} "
            "&& cp {input.provenance} {output.provenance} && : > {log}"
