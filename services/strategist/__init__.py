"""The Strategist: proposes experiments over the domain's search space and keeps the playbook."""
