"""The Supervisor: watches liveness, run times, error rates and progress, and intervenes in events."""
