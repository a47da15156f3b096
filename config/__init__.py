"""Run-time configuration, read once per run and passed down: settings, secrets, the policy's source."""
