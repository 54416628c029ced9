# The paper's Figs. 2-3 (Sec. 5.1.2): escape from a local minimum of the adversarial loss.
#   paper_fig2_escape_run    CNNs at initialisation, every (scale, ratio, seed, input): one job
#   paper_fig3_train         adversarial training of the CNN, one job per (scale, ratio), all seeds
#                            (scripts/train.py; one model per ratio, trained at eps = ratio * scale)
#   paper_fig3_escape_run    the trained models' checkpoints, probed as Fig. 2: one job
#   paper_fig{2,3}_*_tables  raw runs -> {TABLES}/<figure>/{escape,curves}.csv (+ levels.csv for Fig. 2)
# The probes (descent stage, PGA with the paper's update, escape time) are
# adversary_dynamics.escape; scripts/escape.py is its command line.

ESC, FIG2, FIG3 = config["paper_escape"], config["paper_fig2"], config["paper_fig3"]

# cross-key checks the schema cannot state (a CNN on data without an image shape, scales or ratios that
# coincide in paths) are made with the schema, before any job runs (adversary_dynamics.config)
ESC_SEEDS = [str(s) for s in ESC["seeds"]]
FIG3_SCALES = [fmt(s) for s in FIG3["scales"]]
FIG3_RATIOS = [fmt(r) for r in FIG3["ratios"]]
FIG3_EPOCHS = max(FIG3["checkpoints"])


rule paper_fig2_escape_run:
    input:
        code=script_code("scripts/escape.py"),
    output:
        escape=f"{RESULTS}/paper_fig2/escape.csv",
        curves=f"{RESULTS}/paper_fig2/curves.npz",
        levels=f"{RESULTS}/paper_fig2/levels.csv",
        provenance=f"{RESULTS}/paper_fig2/provenance.json",
    log:
        f"{LOGS}/paper_fig2/escape.log",
    benchmark:
        f"{BENCH}/paper_fig2/escape.tsv"
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        gpu=use_gpu(),
        mem_mb=data_mem_mb,
        runtime=escape_runtime("fig2"),
    params:
        out=lambda wildcards, output: str(Path(output.escape).parent),
        args=escape_args("fig2"),
    message:
        stage_message("probing", "Fig. 2 escape probes of the CNN at initialisation")
    shell:
        "exec python scripts/escape.py run --figure fig2 --out-dir {params.out} {params.args} > {log} 2>&1"


rule paper_fig3_train:
    input:
        code=script_code("scripts/train.py"),
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
        f"{LOGS}/paper_fig3/train/scale~{{scale}}/ratio~{{ratio}}.log",
    benchmark:
        f"{BENCH}/paper_fig3/train/scale~{{scale}}/ratio~{{ratio}}.tsv"
    wildcard_constraints:
        ratio=r"[0-9][0-9.e+-]*",
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        gpu=use_gpu(),
        mem_mb=data_mem_mb,
        runtime=lambda wildcards, attempt: 30 * attempt,
    params:
        out_root=lambda wildcards, output: str(Path(output.status[0]).parents[1]),
        seeds=",".join(ESC_SEEDS),
        args=fig3_train_args,
    message:
        stage_message(
            "training",
            "Fig. 3 adversarial training of the CNN at scale {wildcards.scale}, ratio {wildcards.ratio}",
        )
    shell:
        "exec python scripts/train.py --out-root {params.out_root} --scale {wildcards.scale} "
        "--seeds {params.seeds} {params.args} > {log} 2>&1"


rule paper_fig3_escape_run:
    input:
        checkpoints=[
            fig3_checkpoint(s, r, k, e)
            for s in FIG3_SCALES
            for r in FIG3_RATIOS
            for k in ESC_SEEDS
            for e in sorted(FIG3["checkpoints"])
        ],
        code=script_code("scripts/escape.py"),
    output:
        escape=f"{RESULTS}/paper_fig3/escape/escape.csv",
        curves=f"{RESULTS}/paper_fig3/escape/curves.npz",
        provenance=f"{RESULTS}/paper_fig3/escape/provenance.json",
    log:
        f"{LOGS}/paper_fig3/escape.log",
    benchmark:
        f"{BENCH}/paper_fig3/escape.tsv"
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        gpu=use_gpu(),
        mem_mb=data_mem_mb,
        runtime=escape_runtime("fig3"),
    params:
        out=lambda wildcards, output: str(Path(output.escape).parent),
        train_root=fig3_train_root_of_input,
        args=escape_args("fig3"),
    message:
        stage_message(
            "probing", "Fig. 3 escape probes of the adversarially trained CNNs"
        )
    shell:
        "exec python scripts/escape.py run --figure fig3 --out-dir {params.out} --train-root {params.train_root} "
        "{params.args} > {log} 2>&1"


FIG3_TRAIN_RUNS = [
    fig3_train_dir(s, r, k) for s in FIG3_SCALES for r in FIG3_RATIOS for k in ESC_SEEDS
]

for _fig, _run, _keys, _extra in (
    (
        "paper_fig2_escape_by_scale",
        f"{RESULTS}/paper_fig2",
        ("escape", "curves", "levels"),
        [],
    ),
    (
        "paper_fig3_escape_during_training",
        f"{RESULTS}/paper_fig3/escape",
        ("escape", "curves"),
        FIG3_TRAIN_RUNS,
    ),
):

    rule:
        name:
            f"{_fig}_tables"
        input:
            escape=f"{_run}/escape.csv",
            curves=f"{_run}/curves.npz",
            code=script_code("scripts/escape.py"),
        output:
            **{k: f"{fig_tables(_fig)}/{k}.csv" for k in _keys},
            provenance=f"{fig_tables(_fig)}/provenance.json",
        log:
            f"{LOGS}/aggregate/{_fig}.log",
        conda:
            CONDA_ENV
        threads: 1
        resources:
            mem_mb=light_mem_mb,
            runtime=light_runtime,
        params:
            config=config_json,
            run=run_dir_of_input,
            extra=" ".join(_extra),
            out=tables_dir_of_output,
        message:
            stage_message("tables", f"{_fig} tables")
        shell:
            "python scripts/escape.py tables --runs {params.run} --extra-runs {params.extra} --out-dir {params.out} "
            "--config-json {params.config} > {log} 2>&1"

    register_figure(
        _fig,
        tables={k: f"{fig_tables(_fig)}/{k}.csv" for k in _keys},
        provenance=f"{fig_tables(_fig)}/provenance.json",
    )
