"""What the gate says to GitHub and reads from it: the client, its writes, check runs, the forge."""
