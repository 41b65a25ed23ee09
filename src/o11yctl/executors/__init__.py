"""The only modules that touch the world: each hides one library behind a small interface."""
