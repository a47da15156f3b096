"""A local git repository as the governed tree: reading at a commit, writing a branch, the forge."""
