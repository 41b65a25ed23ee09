"""Checks for `verify`: each gathers facts (I/O, through executors) and judges them (pure)."""
