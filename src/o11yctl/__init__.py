"""o11yctl: install, verify and repair a Loki, Tempo, Alloy and Grafana stack on a small K3s cluster."""

__version__ = "0.1.0"
