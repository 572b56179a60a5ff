"""Settings of the pipeline and the server, and the one TOML reader both use."""
