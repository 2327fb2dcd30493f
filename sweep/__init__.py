"""Ray Tune studies that compare student-layer initialisations for distillation (`python -m sweep.run`)."""
