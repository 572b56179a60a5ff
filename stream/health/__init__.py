"""Is the node watching? Its health report, the inference backend's outage state, and the
Prometheus metrics."""
