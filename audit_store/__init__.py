"""The audit store: decisions, the ledger, kept evidence, signing keys, the anchor, verify and index."""
