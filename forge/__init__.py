"""The governed repository as the flows see it, whoever hosts it: the Forge and Source protocols, choosing one, reading through them."""
