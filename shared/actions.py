"""What an operator may do to a running campaign, checked against its projection, published as events
that say who did it: the dashboard's buttons and `alphalab pause|resume|stop|cancel` both come here.

An action the campaign cannot take (it finished, it is already paused, the card is already closed) is
refused with the reason, before anything is published. What it then does is the services' part: the
Strategist makes no proposal while paused, ends a campaign asked to stop, proposes a submitted
experiment (or refuses it, saying why) and weighs hints; a Worker holds a proposal while paused and
kills a run whose proposal is cancelled.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from shared.bus import Bus
from shared.errors import ConfigError
from shared.events import (
    CampaignPaused,
    CampaignResumed,
    CampaignStopRequested,
    Event,
    HintGiven,
    ProposalCancelled,
    ProposalSubmitted,
)
from shared.projections import CampaignView
from shared.projections.kanban import TERMINAL

__all__ = ["NAMES", "Action", "act", "action", "refusal"]

Action = (
    CampaignPaused
    | CampaignResumed
    | CampaignStopRequested
    | ProposalCancelled
    | HintGiven
    | ProposalSubmitted
)
NAMES = ("pause", "resume", "stop", "cancel", "hint", "propose")


def action(
    name: str,
    *,
    by: str,
    reason: str = "",
    proposal_id: str | None = None,
    text: str = "",
    config: dict[str, Any] | None = None,
) -> Action:
    """The event payload of an action as an operator names it (one of NAMES); a bad one is refused
    (ConfigError naming the field)."""
    try:
        return _payload(name, by=by, reason=reason, proposal_id=proposal_id, text=text, config=config)
    except ValidationError as err:
        first = err.errors()[0]
        raise ConfigError(f"{name}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def _payload(
    name: str, *, by: str, reason: str, proposal_id: str | None, text: str, config: dict[str, Any] | None
) -> Action:
    if name == "pause":
        return CampaignPaused(by=by, reason=reason)
    if name == "resume":
        return CampaignResumed(by=by)
    if name == "stop":
        return CampaignStopRequested(by=by, reason=reason)
    if name == "cancel":
        if not proposal_id:
            raise ConfigError("cancel: which proposal? (proposal_id)")
        return ProposalCancelled(proposal_id=proposal_id, reason=reason or f"cancelled by {by}", by=by)
    if name == "hint":
        return HintGiven(by=by, text=text)
    if name == "propose":
        if not isinstance(config, dict):
            raise ConfigError("propose: config must be a JSON object of parameter values")
        return ProposalSubmitted(by=by, config=config, hypothesis=reason)
    raise ConfigError(f"action: {name!r} is not one of {', '.join(NAMES)}")


def refusal(view: CampaignView | None, asked: Action) -> str | None:
    """Why `asked` cannot be done to the campaign as it stands, or None if it can."""
    if view is None:
        return "no such campaign"
    if view.status != "running":
        return f"campaign {view.campaign_id} is {view.status}"
    match asked:
        case CampaignPaused() if view.paused is not None:
            return f"already paused by {view.paused.by}"
        case CampaignResumed() if view.paused is None:
            return "the campaign is not paused"
        case CampaignStopRequested() if view.stop_requested is not None:
            return f"{view.stop_requested.by} already asked it to stop"
        case ProposalCancelled(proposal_id=proposal_id):
            card = view.kanban.cards.get(proposal_id)
            if card is None:
                return f"no proposal {proposal_id} in campaign {view.campaign_id}"
            if card.state in TERMINAL:
                return f"proposal {proposal_id} is already {card.state}"
    return None


async def act(bus: Bus, view: CampaignView | None, asked: Action, campaign_id: str) -> Event:
    """Publish `asked` for the campaign, unless it is refused (ConfigError, with the reason)."""
    if (why := refusal(view, asked)) is not None:
        raise ConfigError(f"{asked.TYPE}: {why}")
    event = Event.new(asked, campaign_id=campaign_id, producer=bus.producer)
    await bus.publish_allowed(event)  # PermissionDenied for a user who may not act (the read-only cli)
    return event
