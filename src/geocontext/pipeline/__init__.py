"""The verbs that chain the stages: run, predict, published heads, reports, evaluate, leaderboard."""
