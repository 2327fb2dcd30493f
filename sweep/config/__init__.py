"""A study's settings: defaults < preset < YAML < flags, merged into typed dataclasses and checked.

`study` holds the study and how it is built, one module per section besides (`search`, `replicate`,
`resources`, `teacher`, `smoke`), `presets` the built-in studies, `flags` the command line, `stored`
a resumed study's own settings and `trial` the translation into one trial's or the teacher's
settings. Nothing here starts Ray or reads a model.
"""
