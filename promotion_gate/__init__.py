"""promotion-gate: decides whether an AI-enabled system may move from sandbox to production.

The installed package maps the repository's top-level folders under one name:
``promotion_gate.checklists`` (the pure core), ``promotion_gate.notifications`` (wire formats),
``promotion_gate.flows`` (the Prefect flows and the CLI), ``promotion_gate.gateway`` (the HTTP
app) and ``promotion_gate.examples`` (the example repository, as package data).
"""

__version__ = "0.6.0"
