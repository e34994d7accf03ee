"""Students distilled from synthetic data alone, and explanations of their decisions (issues 4, 7)."""
