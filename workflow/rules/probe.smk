# Landscape probes (stage `probe`) of every seed's checkpoints at one scale: PGA with restarts,
# certificates, regularity measures and (first seed) plane slices. Parameters:
# stage_registry.STAGES["probe"] (--params).


rule probe:
    input:
        status=seed_files("train", "status.json"),
    output:
        restarts=seed_files("probe", "restarts.csv"),
        regularity=seed_files("probe", "regularity.csv"),
        curves=seed_files("probe", "curves.npz"),
        landscape=seed_files("probe", "landscape.npz"),
        status=seed_files("probe", "status.json"),
        provenance=seed_files("probe", "provenance.json"),
    log:
        stage_log("probe", "scale~{scale}.log"),
    benchmark:
        stage_bench("probe", "scale~{scale}.tsv")
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        **stage_resources("probe"),
    params:
        train_root=scale_root_of_input,
        out_root=scale_root_of_output,
        doc=stage_params("probe"),
        data=data_location(),
    message:
        stage_message(
            "landscape probes",
            "PGA with restarts on the checkpoints of scale {wildcards.scale}, seeds "
            + ",".join(SEEDS),
        )
    shell:
        "python scripts/probe.py --params {params.doc:q} --train-root {params.train_root} "
        "--out-root {params.out_root} --scale {wildcards.scale} {params.data} > {log} 2>&1"
