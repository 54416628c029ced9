# Adversarial training: one job per scale, training every seed (runs land in seed~<k>/), one after
# another or as one batched program (train.batch_seeds). A rerun resumes each seed from its state.pt
# (batched: the scale's state-batched.pt). `exec`: the script is the shell's process, so a
# scheduler's SIGTERM (time limit, pre-emption) reaches it and it writes its resume state first.


rule train:
    input:
        code=script_code("scripts/train.py"),
    output:
        steps=seed_files("train", "steps.csv"),
        epochs=seed_files("train", "epochs.csv"),
        status=seed_files("train", "status.json"),
        provenance=seed_files("train", "provenance.json"),
    log:
        f"{LOGS}/train/scale~{{scale}}.log",
    benchmark:
        f"{BENCH}/train/scale~{{scale}}.tsv"
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        gpu=use_gpu(),
        mem_mb=data_mem_mb,
        runtime=train_runtime,
    params:
        out_root=scale_root_of_output,
        seeds=",".join(SEEDS),
        args=train_args,
    message:
        stage_message(
            "training",
            "adversarial training at scale {wildcards.scale}, seeds "
            + ",".join(SEEDS),
        )
    shell:
        "exec python scripts/train.py --out-root {params.out_root} --scale {wildcards.scale} "
        "--seeds {params.seeds} {params.args} > {log} 2>&1"
