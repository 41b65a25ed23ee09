"""What gets deployed, as pure data: components, chart sets, template values, rendered files, the plan."""
