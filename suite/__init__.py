"""The built-in task suite: environments, experts, specs and reference returns."""
