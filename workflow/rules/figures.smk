# One papermill notebook per figure; each rule is named after its figure, so
# `snakemake --cores 2 paper_fig2_escape_by_scale` rebuilds that figure and only what it needs.
# Figures are registered by the concern files (register_figure in common.smk): this file is
# included last and makes one rule per registered figure. The executed notebook goes to the
# log; the notebook itself writes PDF and PNG atomically. Beside each figure,
# <figure>.provenance.json names the configuration, the code version and every run its numbers
# come from.

for fig, spec in FIGURES.items():

    rule:
        name:
            fig
        input:
            **spec["tables"],
            notebook=f"notebooks/{fig}.ipynb",
            code=script_code(f"notebooks/{fig}.ipynb"),
            provenance=spec["provenance"],
        output:
            pdf=report(
                figure(fig, "pdf"),
                caption=f"../report/{fig}.rst",
                category="Figures",
                labels={"figure": fig, "format": "PDF"},
            ),
            png=report(
                figure(fig, "png"),
                caption=f"../report/{fig}.rst",
                category="Figures",
                labels={"figure": fig, "format": "PNG"},
            ),
            provenance=report(
                figure(fig, "provenance.json"),
                caption="../report/provenance.rst",
                category="Provenance",
                labels={"figure": fig},
            ),
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
        message:
            stage_message(
                "figure",
                f"notebook {fig} -> {FIGDIR}/{fig}.png, .pdf",
                log="{log.stderr} (executed notebook: {log.notebook})",
            )
        shell:
            "papermill {input.notebook} {log.notebook} -k python3 --no-progress-bar {params.nb} "
            "> {log.stderr} 2>&1 && cp {input.provenance} {output.provenance}.tmp "
            "&& mv {output.provenance}.tmp {output.provenance}"
