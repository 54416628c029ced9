# Landscape probes of every seed's checkpoints at one scale: PGA with restarts,
# certificates, regularity measures and (first seed) plane slices.


rule probe:
    input:
        status=seed_files(RESULTS + "/train", "status.json"),
        code=CODE_PROBE,
    output:
        restarts=seed_files(RESULTS + "/probe", "restarts.csv"),
        regularity=seed_files(RESULTS + "/probe", "regularity.csv"),
        curves=seed_files(RESULTS + "/probe", "curves.npz"),
        landscape=seed_files(RESULTS + "/probe", "landscape.npz"),
        status=seed_files(RESULTS + "/probe", "status.json"),
        provenance=seed_files(RESULTS + "/probe", "provenance.json"),
    params:
        train_root=train_root,
        out_root=probe_root,
        seeds=",".join(SEEDS),
        args=probe_args,
    log:
        f"{LOGS}/probe/scale~{{scale}}.log",
    benchmark:
        f"{BENCH}/probe/scale~{{scale}}.tsv"
    threads: config["threads"]
    resources:
        gpu=use_gpu(),
        mem_mb=data_mem_mb,
        runtime=probe_runtime,
    shell:
        "python scripts/probe.py --train-root {params.train_root} --out-root {params.out_root} "
        "--scale {wildcards.scale} --seeds {params.seeds} {params.args} > {log} 2>&1"
