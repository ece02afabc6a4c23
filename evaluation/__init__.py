"""Acting and scoring: the agent, rollouts, expert-normalized scores, tables and plots."""
