"""The `promotion-gate` command: what a team, an auditor and an admin type at the terminal."""
