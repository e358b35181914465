"""Column names that travel from the dataset row through verl to the reward managers and agent loop.

verl copies every dataset column into the non-tensor batch that reaches ``run_single`` and the agent
loop's ``run(**kwargs)``, so these names are the contract between LAPO's components.
"""

#: stable problem id (string); verl's own ``extra_info.index`` silently defaults to 0, so LAPO checks this
PROBLEM_ID_COLUMN = "lapo_problem_id"
#: True for training rows (their lengths are recorded), False for validation rows
RECORD_COLUMN = "lapo_record"
#: stage 2: the plan (tokens) stated in the reasoning context
PLAN_COLUMN = "lapo_plan"
#: True when the plan is the unsolved-problem fallback (max generation length), not a measured length
PLAN_IS_FALLBACK_COLUMN = "lapo_plan_fallback"
#: L1 baselines: the target length stated in the prompt
TARGET_COLUMN = "lapo_target_length"
