"""Partner API adapters shared by every function: one module per partner on one HTTP core."""
