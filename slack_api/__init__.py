"""What the gate says to Slack and hears back: the client, the sign-off channel, the owner's notice."""
