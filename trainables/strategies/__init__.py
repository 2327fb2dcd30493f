"""Layer strategies: which teacher layers a K-layer student copies. One registry (`registry`), the rules
that select layers from the depths alone (`fixed`), those that score the teacher's layers on data
(`data_driven`), and `subsets:`, which stands for many `custom:` strategies (`subsets`).

Importing the package registers every rule; adding a rule is one registration in its module.
"""

from trainables.strategies import data_driven, fixed  # noqa: F401  (each module registers its rules)
