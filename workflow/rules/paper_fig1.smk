# The paper's Fig. 1 ("Landscapes and trajectories on simulated data"): the softplus theory
# network on 2-D simulated inputs, the loss over the whole disk |delta| <= eps, one PGD
# trajectory per (scale, ratio) panel, and a count of local maxima (Theorem 5.1). One job, a few
# seconds on one core: scripts/paper_fig1.py (library: adversary_dynamics.figures.simulated) writes
# the stage paper_fig1_landscapes_tables: {grid,traj,panels,rim,maxima}.csv and provenance.json.

P1 = config["paper_fig1"]
P1_FIG = "paper_fig1_landscapes"

# cross-key checks the schema cannot state: refused before any job runs, naming the key
for _key, _bad, _allowed in (
    (
        "example",
        P1["example"] >= P1["n_points"],
        f"an index below paper_fig1.n_points = {P1['n_points']}",
    ),
    (
        "maxima_examples",
        P1["maxima_examples"] > P1["n_points"],
        f"at most paper_fig1.n_points = {P1['n_points']}",
    ),
    (
        "maxima_steps",
        P1["maxima_steps"] < P1["maxima_phases"],
        f"at least paper_fig1.maxima_phases = {P1['maxima_phases']}",
    ),
):
    if _bad:
        raise ValueError(
            f"config key 'paper_fig1.{_key}' has value {P1[_key]!r}; allowed: {_allowed}"
        )


rule paper_fig1_landscapes_tables:
    output:
        **figure_tables(P1_FIG),
        provenance=f"{stage_dir(f'{P1_FIG}_tables')}/provenance.json",
    log:
        stage_log(f"{P1_FIG}_tables", "tables.log"),
    benchmark:
        stage_bench(f"{P1_FIG}_tables", "tables.tsv")
    conda:
        CONDA_ENV
    threads: 1
    resources:
        **stage_resources("paper_fig1_landscapes_tables"),
    params:
        out=tables_dir_of_output,
        doc=stage_params(f"{P1_FIG}_tables"),
    message:
        stage_message(
            "tables",
            "Fig. 1 landscapes, trajectories and maxima on simulated 2-D data",
        )
    shell:
        "exec python scripts/paper_fig1.py --params {params.doc:q} --out-dir {params.out} > {log} 2>&1"
