"""`o11yctl status`: the stack's health on one screen, and how full its data directories are."""
