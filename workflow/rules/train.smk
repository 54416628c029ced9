# Adversarial training (stage `train`): one job per scale, training every seed (runs land in
# seed~<k>/ of the stage's folder), one after another or as one batched program (train.batch_seeds).
# A rerun resumes each seed from its state.pt (batched: the scale's state-batched.pt). `exec`: the
# script is the shell's process, so a scheduler's SIGTERM (time limit, pre-emption) reaches it and
# it writes its resume state first. Parameters: stage_registry.STAGES["train"] (--params).


rule train:
    output:
        steps=seed_files("train", "steps.csv"),
        epochs=seed_files("train", "epochs.csv"),
        status=seed_files("train", "status.json"),
        provenance=seed_files("train", "provenance.json"),
    log:
        stage_log("train", "scale~{scale}.log"),
    benchmark:
        stage_bench("train", "scale~{scale}.tsv")
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        **stage_resources("train"),
    params:
        out_root=scale_root_of_output,
        doc=stage_params("train"),
        data=data_location(download=True),
    message:
        stage_message(
            "training",
            "adversarial training at scale {wildcards.scale}, seeds " + ",".join(SEEDS),
        )
    shell:
        "exec python scripts/train.py --params {params.doc:q} --out-root {params.out_root} "
        "--scale {wildcards.scale} {params.data} > {log} 2>&1"
