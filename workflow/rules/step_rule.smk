# Extension figure ext_step_rule (issue 18): Fig. 2's probe at the fixed ratios of `ext_step_rule:`
# under each PGA step rule (absolute: the paper's; proportional; normalized; absolute with the CNN
# seeing x / s), and T5's statistic per rule. One job writes the figure's tables directly (stage
# ext_step_rule_tables: escape.csv, summary.csv, t5_by_variant.csv, provenance.json);
# adversary_dynamics.figures.step_rule, scripts/step_rule.py.


rule ext_step_rule_tables:
    output:
        **figure_tables("ext_step_rule"),
        provenance=f"{stage_dir('ext_step_rule_tables')}/provenance.json",
    log:
        stage_log("ext_step_rule_tables", "step_rule.log"),
    benchmark:
        stage_bench("ext_step_rule_tables", "step_rule.tsv")
    conda:
        CONDA_ENV
    threads: config["threads"]
    resources:
        **stage_resources("ext_step_rule_tables"),
    params:
        out=tables_dir_of_output,
        doc=stage_params("ext_step_rule_tables"),
        data=data_location(),
    message:
        stage_message(
            "probing",
            "escape time by input scale under each PGA step rule (ext_step_rule)",
        )
    shell:
        "exec python scripts/step_rule.py --params {params.doc:q} --out-dir {params.out} "
        "{params.data} > {log} 2>&1"
