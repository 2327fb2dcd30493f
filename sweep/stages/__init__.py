"""Running a checked, planned study on Ray: `study.run_study` is the one entry point; the other
modules are its parts (the Ray instance, the teacher stage, the search and replicate experiments, and
the deliverables)."""
