# Rebuilds every figure of Deng, He, Huang & Su (ICML 2020), "Towards Understanding the
# Dynamics of the First-Order Adversaries", from raw runs. Usage: snakemake --cores 8
import sys

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
include: "workflow/rules/paper_escape.smk"
include: "workflow/rules/step_rule.smk"
include: "workflow/rules/paper_fig1.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/claims.smk"


rule all:
    default_target: True
    input:
        get_final_outputs(),


# Before the first job: record the configuration in its results folder ({RESULTS}/config.json; where
# results go was printed when the workflow was read). Each job prints its stage and log as it
# starts (the rules' `message:`, common.smk's stage_message).
onstart:
    record_config()
    submit_without_guessed_account()


# After a successful run: one line saying whether the run's claims.json agrees with the committed
# reference (docs/figures/claims.json; docs/figures/<name>/ for the others) within the tolerances of
# adversary_dynamics.claims.compare, or which claims differ. Nothing for a configuration without one.
onsuccess:
    report_claims_agreement()


onerror:
    print(
        f"The run stopped before the end: a job failed (its log is printed above: "
        f"profiles/default sets show-failed-logs) or the run was interrupted. All job logs of this "
        f"configuration are in {LOGS}/; rerunning the same command resumes.",
        file=sys.stderr,
    )
