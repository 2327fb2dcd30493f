"""What a study will run: `plan.plan_study` derives every trial from the settings, once, for the dry
run and the stages alike; `warnings` says what the user should know before it starts."""
