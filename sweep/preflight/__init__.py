"""Everything checked before Ray starts, so that a study is refused for exactly the reasons a trial
would fail, minutes earlier: `checks.check_study` runs them all and returns what they learned."""
