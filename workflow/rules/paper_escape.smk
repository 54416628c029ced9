# The paper's Figs. 2-3 (Sec. 5.1.2): escape from a local minimum of the adversarial loss.
#   paper_fig2_escape_run    CNNs at initialisation, every (scale, ratio, seed, input): one job
#   paper_fig3_train         adversarial training of the CNN, one job per (scale, ratio), all seeds
#                            (scripts/train.py; one model per ratio, trained at eps = ratio * scale)
#   paper_fig3_escape_run    the trained models' checkpoints, probed as Fig. 2: one job
#   paper_fig{2,3}_*_tables  raw runs -> {escape,curves}.csv (+ levels.csv for Fig. 2)
# The probes (descent stage, PGA with the paper's update, escape time) are
# adversary_dynamics.figures.escape; scripts/escape.py is its command line. Parameters: the stages of
# adversary_dynamics.pipeline.stages (--params).

# the sections, fig3_train_dir, fig3_checkpoint: common.smk; resources: adversary_dynamics.pipeline.costs


rule paper_fig2_escape_run:
    output:
        escape=f"{stage_dir('paper_fig2_escape_run')}/escape.csv",
        curves=f"{stage_dir('paper_fig2_escape_run')}/curves.npz",
        escape_replica=f"{stage_dir('paper_fig2_escape_run')}/escape_replica.csv",
        levels=f"{stage_dir('paper_fig2_escape_run')}/levels.csv",
        provenance=f"{stage_dir('paper_fig2_escape_run')}/provenance.json",
    log:
        stage_log("paper_fig2_escape_run", "escape.log"),
    benchmark:
        stage_bench("paper_fig2_escape_run", "escape.tsv")
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        **stage_resources("paper_fig2_escape_run"),
    params:
        out=lambda wildcards, output: str(Path(output.escape).parent),
        doc=stage_params("paper_fig2_escape_run"),
        data=data_location(),
    message:
        stage_message("probing", "Fig. 2 escape probes of the CNN at initialisation")
    shell:
        "exec python scripts/escape.py run --params {params.doc:q} --out-dir {params.out} "
        "{params.data} > {log} 2>&1"


rule paper_fig3_train:
    output:
        checkpoints=[
            fig3_checkpoint("{scale}", "{ratio}", k, e)
            for k in ESC_SEEDS
            for e in sorted(FIG3["checkpoints"])
        ],
        status=[
            f"{fig3_train_dir('{scale}', '{ratio}', k)}/status.json" for k in ESC_SEEDS
        ],
    log:
        stage_log("paper_fig3_train", "scale~{scale}/ratio~{ratio}.log"),
    benchmark:
        stage_bench("paper_fig3_train", "scale~{scale}/ratio~{ratio}.tsv")
    wildcard_constraints:
        ratio=r"[0-9][0-9.e+-]*",
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        **stage_resources("paper_fig3_train"),
    params:
        out_root=lambda wildcards, output: str(Path(output.status[0]).parents[1]),
        doc=stage_params("paper_fig3_train"),
        data=data_location(download=True),
    message:
        stage_message(
            "training",
            "Fig. 3 adversarial training of the CNN at scale {wildcards.scale}, ratio {wildcards.ratio}",
        )
    shell:
        "exec python scripts/train.py --params {params.doc:q} --out-root {params.out_root} "
        "--scale {wildcards.scale} --ratio {wildcards.ratio} {params.data} > {log} 2>&1"


rule paper_fig3_escape_run:
    input:
        checkpoints=[
            fig3_checkpoint(s, r, k, e)
            for s in FIG3_SCALES
            for r in FIG3_RATIOS
            for k in ESC_SEEDS
            for e in sorted(FIG3["checkpoints"])
        ],
    output:
        escape=f"{stage_dir('paper_fig3_escape_run')}/escape.csv",
        curves=f"{stage_dir('paper_fig3_escape_run')}/curves.npz",
        escape_replica=f"{stage_dir('paper_fig3_escape_run')}/escape_replica.csv",
        provenance=f"{stage_dir('paper_fig3_escape_run')}/provenance.json",
    log:
        stage_log("paper_fig3_escape_run", "escape.log"),
    benchmark:
        stage_bench("paper_fig3_escape_run", "escape.tsv")
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        **stage_resources("paper_fig3_escape_run"),
    params:
        out=lambda wildcards, output: str(Path(output.escape).parent),
        train_root=fig3_train_root_of_input,
        doc=stage_params("paper_fig3_escape_run"),
        data=data_location(),
    message:
        stage_message(
            "probing", "Fig. 3 escape probes of the adversarially trained CNNs"
        )
    shell:
        "exec python scripts/escape.py run --params {params.doc:q} --out-dir {params.out} "
        "--train-root {params.train_root} {params.data} > {log} 2>&1"


FIG3_TRAIN_RUNS = [
    fig3_train_dir(s, r, k) for s in FIG3_SCALES for r in FIG3_RATIOS for k in ESC_SEEDS
]

for _fig, _run, _extra in (
    ("paper_fig2_escape_by_scale", "paper_fig2_escape_run", []),
    ("paper_fig3_escape_during_training", "paper_fig3_escape_run", FIG3_TRAIN_RUNS),
):

    rule:
        name:
            f"{_fig}_tables"
        input:
            escape=f"{stage_dir(_run)}/escape.csv",
            curves=f"{stage_dir(_run)}/curves.npz",
            escape_replica=f"{stage_dir(_run)}/escape_replica.csv",
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
            doc=stage_params(f"{_fig}_tables"),
            run=run_dir_of_input,
            extra=" ".join(_extra),
            out=tables_dir_of_output,
        message:
            stage_message("tables", f"{_fig} tables")
        shell:
            "python scripts/escape.py tables --params {params.doc:q} --runs {params.run} "
            "--extra-runs {params.extra} --out-dir {params.out} > {log} 2>&1"
