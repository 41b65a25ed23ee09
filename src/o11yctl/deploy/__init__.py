"""The commands that change a cluster (install, uninstall): preflight, the plan walker, and the step handlers."""
