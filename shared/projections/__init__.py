"""Projections: pure folds over the event log (leaderboard, playbook, kanban, budget)."""

from shared.projections.lab import CampaignView, Lab, evolve, snapshot

__all__ = ["CampaignView", "Lab", "evolve", "snapshot"]
