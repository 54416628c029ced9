# Rebuilds every figure of Deng, He, Huang & Su (ICML 2020), "Towards Understanding the
# Dynamics of the First-Order Adversaries", from raw runs. Usage: snakemake --cores 8
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


wildcard_constraints:
    scale=r"[0-9][0-9.e+-]*",
    seed=r"\d+",


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/probe.smk"
include: "workflow/rules/theory.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/claims.smk"


rule all:
    default_target: True
    input:
        get_final_outputs(),
