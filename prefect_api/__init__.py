"""The gate's runs as the Prefect server keeps them: starting, finding, waiting, refused clicks, links."""
