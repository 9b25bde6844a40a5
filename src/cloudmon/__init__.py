"""cloudmon: Kubernetes resource monitoring with history."""
