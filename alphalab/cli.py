"""`alphalab`: start the lab's processes, and audit, replay and print what its event log holds."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from rich.console import Console

from alphalab import render
from alphalab.stack import Stack
from shared.errors import AlphaLabError, ConfigError
from shared.events import SUBJECT_PREFIX, Producer
from shared.events.schema import event_schemas, write_schemas
from shared.ledger import Ledger, read_only
from shared.logging import configure_logging
from shared.projections import CampaignView, Lab, snapshot
from shared.replay import fold
from shared.secrets import shown_url
from shared.settings import Settings

if TYPE_CHECKING:
    from alphalab.brain import Brain
    from alphalab.campaign import CampaignResult
    from alphalab.chaos import Chaos

__all__ = ["main"]

SERVICES: dict[str, str] = {
    "ledger": "services.ledger.writer",
    "explorer": "services.explorer.handlers",
    "strategist": "services.strategist.service",
    "supervisor": "services.supervisor.service",
    "worker": "services.worker.service",
}


class _Cli(click.Group):
    """Prints an AlphaLab error as one line and exits 2, instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AlphaLabError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(2)


_home = click.option(
    "--home", type=click.Path(path_type=Path), help="Lab directory (default: $ALPHALAB_HOME or ~/.alphalab)."
)
_nats = click.option("--nats-url", help="NATS server to use (default: $ALPHALAB_NATS_URL; unset: embedded).")
_campaign = click.option(
    "--campaign", "campaign_id", help="Only this campaign (default: all, or the latest)."
)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True
)
def main(log_level: str) -> None:
    """AlphaLab: an autonomous research lab whose every step is an event in an auditable log."""
    configure_logging("console", log_level)
    # SIGTERM (kill, a container stop) ends any command as Ctrl-C does: a command that started a stack
    # stops its services (they run in sessions of their own) instead of leaving them running orphaned.
    signal.signal(signal.SIGTERM, _interrupt)


# --- running ---------------------------------------------------------------------------------


@main.command()
@_home
@_nats
def up(home: Path | None, nats_url: str | None) -> None:
    """Start NATS (embedded unless --nats-url/$ALPHALAB_NATS_URL is set) and the ledger; Ctrl-C stops all.

    Services restart if they crash. Other services join with ALPHALAB_NATS_URL set to the printed URL.
    """
    settings = Settings.load(home=home, nats_url=nats_url)
    with Stack(settings) as stack:
        stack.start("ledger")
        shown = shown_url(stack.nats_url)
        click.echo(f"NATS   {shown}\nhome   {settings.home}\nlogs   {stack.logs}\nCtrl-C to stop.")
        try:
            while True:
                stack.tend()
                time.sleep(0.5)
        except KeyboardInterrupt:
            click.echo("stopping...")


@main.command()
@click.argument("name", type=click.Choice(sorted(SERVICES)))
@_home
@_nats
def service(name: str, home: Path | None, nats_url: str | None) -> None:
    """Run one service in this process (what `python -m services.NAME` does), e.g. in its own container."""
    from importlib import import_module

    from shared.service import run_service

    settings = Settings.load(home=home, nats_url=nats_url)
    asyncio.run(run_service(name, import_module(SERVICES[name]).run, settings))


@main.command()
def domains() -> None:
    """List the built-in domains (a campaign also accepts the path of your own adapter folder)."""
    from shared.domain import builtin_domains, load_domain

    for name in sorted(builtin_domains()):
        manifest = load_domain(name).manifest
        click.echo(f"{name:12} {manifest.metric.name} ({manifest.metric.direction})  {manifest.objective}")


_workers = click.option(
    "--workers", type=click.IntRange(1, 64), default=2, show_default=True, help="Worker processes."
)
_experiments = click.option(
    "--experiments", type=click.IntRange(1), help="Experiment budget (default: the domain's)."
)
_chaos = click.option(
    "--chaos", is_flag=True, help="SIGKILL every service once mid-campaign to show recovery."
)
_data = click.option(
    "--data", type=click.Path(exists=True, dir_okay=False), help="Your own data file (CSV/Parquet)."
)
_unsafe = click.option(
    "--unsafe-no-sandbox",
    "unsafe",
    is_flag=True,
    help="Start even without a sandbox, or with a harness that lets a known hack through.",
)


@main.command(name="run")
@click.option(
    "--domain", "domain_ref", required=True, help="A built-in domain's name or your adapter folder."
)
@_data
@_workers
@_experiments
@_home
@_chaos
@_unsafe
@click.option(
    "--brain",
    type=click.Choice(["builtin", "llm"]),
    default="builtin",
    show_default=True,
    help="builtin: offline, no key (Optuna, rules); llm: models write and run code.",
)
@click.option(
    "--llm",
    "llm_spec",
    help="Models per role, e.g. strategist=anthropic:claude-opus-4-6,worker=openai:gpt-5.2.",
)
@click.option(
    "--config",
    "--llm-config",
    "config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Campaign file (TOML): [roles.<role>] models, [prices], [budget] max_usd.",
)
@click.option(
    "--max-usd", type=click.FloatRange(min=0, min_open=True), help="Stop the LLM brain at this spend."
)
def run_command(
    domain_ref: str,
    data: str | None,
    workers: int,
    experiments: int | None,
    home: Path | None,
    chaos: bool,
    unsafe: bool,
    brain: str,
    llm_spec: str | None,
    config: Path | None,
    max_usd: float | None,
) -> None:
    """Run a whole campaign (explore, baselines, experiments, playbook): offline with the builtin brain,
    or with models (--brain llm) that write, run, debug and analyse code."""
    from alphalab.brain import choose_brain
    from shared.sandbox import isolation

    sandbox = isolation(Settings.load(home=home).sandbox)
    chosen = choose_brain(brain, llm_spec, config, max_usd, sandbox=sandbox, unsafe=unsafe)  # type: ignore[arg-type]
    _run(domain_ref, data, workers, experiments, home, chaos, unsafe, chosen)


@main.command()
@click.option(
    "--domain",
    "domain_ref",
    default="traffic",
    show_default=True,
    help="A built-in domain (alphalab domains).",
)
@_data
@_workers
@click.option("--experiments", type=click.IntRange(1), help="Experiment budget [default: the domain's].")
@_home
@_chaos
@_unsafe
def demo(
    domain_ref: str,
    data: str | None,
    workers: int,
    experiments: int | None,
    home: Path | None,
    chaos: bool,
    unsafe: bool,
) -> None:
    """The offline demo: a campaign of the builtin brain, no API key needed (traffic: real sensor counts)."""
    _run(domain_ref, data, workers, experiments, home, chaos, unsafe)


@main.command()
@click.option(
    "--domain", "domain_ref", required=True, help="A built-in domain's name or your adapter folder."
)
@_data
@_experiments
@_home
@_nats
def start(
    domain_ref: str, data: str | None, experiments: int | None, home: Path | None, nats_url: str | None
) -> None:
    """Start a campaign (builtin brain) on a lab already running elsewhere (compose, Kubernetes, other
    hosts) and watch it to its end: the adapter and data file travel to it as blobs. Connect as a NATS
    user allowed to start campaigns (`operator`); the campaign's files are written under --home."""
    from alphalab.campaign import start_on_lab

    settings = Settings.load(home=home, nats_url=nats_url)
    if not settings.nats_url:
        raise ConfigError("start: which lab? give --nats-url (or $ALPHALAB_NATS_URL); `run` starts one here")
    console = _campaign_console()
    result = start_on_lab(settings, domain_ref, data=data, experiments=experiments, console=console)
    _report(result, settings, console, None)


@main.command("new-domain")
@click.argument("name")
@click.option("--kind", type=click.Choice(["tabular", "timeseries", "text", "kernels"]), required=True)
@click.option("--into", "parent", type=click.Path(file_okay=False, path_type=Path), default=Path("."))
def new_domain_command(name: str, kind: str, parent: Path) -> None:
    """Write a working adapter folder NAME of the given kind, to edit from there (docs/adapters.md)."""
    from alphalab.scaffold import new_domain

    folder = new_domain(name, kind, parent).resolve()
    click.echo(f"wrote {folder}/: try `alphalab run --domain {folder} --experiments 4`")


def _run(
    domain_ref: str,
    data: str | None,
    workers: int,
    experiments: int | None,
    home: Path | None,
    chaos: bool,
    unsafe: bool,
    brain: Brain | None = None,
) -> None:
    from alphalab.campaign import run_campaign

    settings = Settings.load(home=home)
    _require_sandbox(settings, unsafe)
    console = _campaign_console()
    monkey = _monkey(chaos)
    result = run_campaign(
        settings,
        domain_ref,
        data=data,
        workers=workers,
        experiments=experiments,
        console=console,
        on_tick=monkey,
        unsafe_no_sandbox=unsafe,
        brain=brain,
    )
    _report(result, settings, console, monkey)


@main.command()
@click.argument("campaign_id", required=False)
@_workers
@_home
@_nats
@click.option(
    "--by", default=lambda: getpass.getuser(), show_default="your login", help="Who resumes a pause."
)
def resume(campaign_id: str | None, workers: int, home: Path | None, nats_url: str | None, by: str) -> None:
    """Make CAMPAIGN go on: one an operator paused (the lab at --nats-url / $ALPHALAB_NATS_URL is
    running), or one whose lab was interrupted (Ctrl-C, a crash, a power loss), brought back and run
    to its end from its event log (default: the latest unfinished one); nothing is lost or run twice."""
    from alphalab.campaign import resume_campaign

    settings = Settings.load(home=home, nats_url=nats_url)
    paused = _paused_campaign(settings.nats_url, campaign_id) if settings.nats_url else None
    if paused is not None:
        _act(settings.nats_url, paused, "resume", by=by)
        return
    console = _campaign_console()
    result = resume_campaign(settings, campaign_id, workers=workers, console=console)
    _report(result, settings, console, None)


@main.command()
@click.option(
    "--seconds",
    type=click.FloatRange(10),
    default=120.0,
    show_default=True,
    help="How long random kills go on (the planned ones come at their moments).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random kills.")
@click.option(
    "--experiments", type=click.IntRange(1), default=10, show_default=True, help="Experiment budget."
)
@_home
def chaos(seconds: float, seed: int, experiments: int, home: Path | None) -> None:
    """Run a traffic campaign while SIGKILLing every service (several times), the NATS server (twice and
    more) and SIGSTOPping a worker past its heartbeat; then check nothing was lost, doubled or miscounted,
    print the counts, and exit 1 if any check failed."""
    from alphalab.campaign import run_campaign
    from alphalab.chaos import ChaosMonkey, verify

    settings = Settings.load(home=home)
    _require_sandbox(settings, unsafe=False)
    console = _campaign_console()
    monkey = ChaosMonkey(seconds=seconds, seed=seed)
    result = run_campaign(
        settings, "traffic", data=None, workers=2, experiments=experiments, console=console, on_tick=monkey
    )
    failures, events = verify(settings, result.campaign_id, snapshot(result.view))
    for line in monkey.report(events, result.view):
        console.print(line, highlight=False)
    console.print(f"finished        {result.reason}", highlight=False)
    for failure in failures:
        console.print(f"[red]FAILED[/] {failure}")
    if failures:
        sys.exit(1)
    console.print(
        "[green]every check held[/]: finished once, every proposal terminal, at most one counted "
        "result per proposal, ledger == stream, gapless positions, replay == live"
    )


def _require_sandbox(settings: Settings, unsafe: bool) -> None:
    from shared.sandbox import isolation

    sandbox = isolation(settings.sandbox)
    if sandbox.mode == "none" and not unsafe:
        raise ConfigError(
            f"no sandbox for candidate code here ({sandbox.detail}); install bubblewrap, "
            "see `alphalab doctor`, or pass --unsafe-no-sandbox to run candidates unconfined"
        )


def _campaign_console() -> Console:
    configure_logging("console", "warning")  # the progress bar is the CLI's voice; services log to files
    return Console()


def _monkey(chaos: bool) -> Chaos | None:
    from alphalab.chaos import Chaos

    return Chaos() if chaos else None


def _report(result: CampaignResult, settings: Settings, console: Console, monkey: Chaos | None) -> None:
    """Print how the campaign ended; exit 1 if it ended before any experiment (rejected harness,
    failed exploration)."""
    if monkey is not None:
        console.print(f"chaos: SIGKILLed and restarted {', '.join(monkey.killed)}")
    if result.view.harness_tested is not None:
        console.print(render.harness_table(result.view))
    if result.view.harness == "rejected":
        console.print(
            f"[red]The campaign did not start: the harness {result.view.harness_digest} was rejected.[/]"
        )
        sys.exit(1)
    if not result.view.kanban.cards:
        console.print(f"[red]The campaign ended before any experiment: {result.reason}[/]")
        sys.exit(1)
    console.print(render.leaderboard_table(result.view, top=10))
    console.print(render.versus_baselines_table(result.view))
    console.print(render.playbook_table(result.view))
    spent = result.view.budget
    lines = []
    if spent.llm_calls:
        tokens = f"{spent.input_tokens:,} in, {spent.output_tokens:,} out"
        lines.append(
            ("LLM spend", f"${spent.usd:.4f} over {spent.llm_calls} calls ({tokens}); `alphalab cost`")
        )
    lines += [
        ("finished", result.reason),
        *((label, str(path)) for label, path in result.files.items()),
        ("campaign id", result.campaign_id),
    ]
    lines.append(("replay", f"alphalab replay --home {settings.home} --campaign {result.campaign_id} --json"))
    for label, value in lines:
        console.print(f"{label:>24}  {value}", soft_wrap=True, highlight=False)


@main.command()
@click.option(
    "--domain", "domain_ref", required=True, help="A built-in domain's name or your adapter folder."
)
@click.argument("candidate", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_data
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A JSON file of hyperparameters for the candidate (default: none, its own defaults).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as one JSON document.")
def evaluate(
    domain_ref: str, candidate: Path, data: str | None, config_file: Path | None, seed: int, as_json: bool
) -> None:
    """Grade one candidate folder with the domain's harness, sandboxed; exit 1 if it is invalid."""
    from shared.domain import load_domain
    from shared.grading import evaluate as grade
    from shared.sandbox import tree

    domain = load_domain(domain_ref)
    config = json.loads(config_file.read_text()) if config_file else {}
    with tree.scratch("alphalab-evaluate-") as scratch:
        verdict = asyncio.run(
            grade(
                domain,
                scratch / "run",
                candidate=candidate.resolve(),
                config=config,
                seed=seed,
                data=data,
            )
        )
    if as_json:
        click.echo(json.dumps(verdict.to_json(), indent=2))
    else:
        Console().print(render.verdict_table(verdict, domain.manifest.metric.name))
    sys.exit(0 if verdict.valid else 1)


@main.command()
def doctor() -> None:
    """Say which sandbox isolation is active for candidate code here, and what is missing."""
    from shared.sandbox import isolation

    sandbox = isolation(Settings.load().sandbox)
    console = Console()
    console.print(f"sandbox: [bold]{sandbox.mode}[/] - {sandbox.detail}", highlight=False)
    for aspect, how in sandbox.protections:
        console.print(f"  [green]ok[/]       {aspect:14} {how}", highlight=False, soft_wrap=True)
    for missing in sandbox.missing:
        console.print(f"  [red]missing[/]  {missing}", highlight=False, soft_wrap=True)
    if sandbox.missing:
        remedies = []
        if sandbox.mode != "bubblewrap":
            remedies.append("install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap)")
        if any(m.startswith(("memory", "workspace", "host paths")) for m in sandbox.missing):
            remedies.append("run as root, or give this user a delegated cgroup with the memory controller")
        advice = "; ".join(remedies) or "see above"
        console.print(f"To isolate candidates fully: {advice}.", highlight=False, soft_wrap=True)
    sys.exit(0 if sandbox.complete else 1)


# --- the event log ---------------------------------------------------------------------------


@main.group()
def events() -> None:
    """Inspect the event log: schemas, a dump of the ledger, or a live tail of the bus."""


@events.command()
@click.option("--out", type=click.Path(path_type=Path), help="Write one <type>.schema.json per type here.")
def schema(out: Path | None) -> None:
    """Write (or print) the JSON Schema of every event type, for services in other languages."""
    if out is None:
        click.echo(json.dumps(event_schemas(), indent=2, sort_keys=True))
        return
    for path in write_schemas(out):
        click.echo(path)


@events.command()
@_home
@_campaign
@click.option("--type", "event_type", help="Only events of this type, e.g. run-finished.")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]),
    help="Only events that occurred at or after this time (UTC unless an offset is given).",
)
def dump(home: Path | None, campaign_id: str | None, event_type: str | None, since: datetime | None) -> None:
    """Print stored events as JSON lines, in log order, for audit."""
    with _open_ledger(home) as ledger:
        for body in ledger.raw(campaign_id=campaign_id, event_type=event_type, since=_utc(since)):
            click.echo(body)


@events.command()
@_nats
@_campaign
@click.option("--type", "event_type", help="Only events of this type.")
@click.option("--all", "from_start", is_flag=True, help="Start from the first event instead of new ones.")
@click.option("--count", type=int, help="Stop after this many events.")
def tail(
    nats_url: str | None, campaign_id: str | None, event_type: str | None, from_start: bool, count: int | None
) -> None:
    """Follow events on the bus as JSON lines until Ctrl-C (or --count)."""
    settings = Settings.load(nats_url=nats_url)
    if not settings.nats_url:
        raise ConfigError(
            "tail reads the live bus: set ALPHALAB_NATS_URL or --nats-url (printed by `alphalab up`)"
        )
    subject = f"{SUBJECT_PREFIX}.{campaign_id or '*'}.{event_type or '*'}"
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_tail(settings.nats_url, subject, from_start, count))


async def _tail(url: str, subject: str, from_start: bool, count: int | None) -> None:
    from nats.js import api

    from shared.bus import STREAM, Bus

    bus = await Bus.connect(url, Producer(service="cli", instance="tail"))
    policy = api.DeliverPolicy.ALL if from_start else api.DeliverPolicy.NEW
    subscription = await bus.js.subscribe(
        subject, stream=STREAM, ordered_consumer=True, deliver_policy=policy
    )
    seen = 0
    try:
        while count is None or seen < count:
            try:
                msg = await subscription.next_msg(timeout=3600)
            except TimeoutError:
                continue
            click.echo(msg.data.decode(errors="replace"))
            seen += 1
    finally:
        await bus.close()


@main.command()
@_home
@_nats
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option("--token", help="Required of every browser; default: none on loopback, else generated.")
@click.option(
    "--user", default=lambda: getpass.getuser(), show_default="your login",
    help="Who the page's actions are recorded as (whoever holds the token acts as this user).",
)  # fmt: skip
def dashboard(
    home: Path | None, nats_url: str | None, host: str, port: int, token: str | None, user: str
) -> None:
    """Watch and audit campaigns in a browser: live from NATS (--nats-url or $ALPHALAB_NATS_URL), or
    from the ledger alone (no NATS needed) when no URL is set."""
    import secrets

    from dashboard.serve import loopback, serve

    settings = Settings.load(home=home, nats_url=nats_url)
    if token is None and not loopback(host):
        token = secrets.token_urlsafe(24)
    source = (
        f"live from {shown_url(settings.nats_url)}"
        if settings.nats_url
        else f"from the ledger {settings.ledger_path}"
    )
    address = f"http://{host}:{port}/" + (f"?token={token}" if token else "")
    click.echo(f"dashboard {address} ({source}); Ctrl-C to stop")
    asyncio.run(
        serve(
            host=host,
            port=port,
            token=token,
            nats_url=settings.nats_url,
            home=settings.home,
            ledger=settings.ledger_path,
            user=user,
        )
    )


# --- operator actions ------------------------------------------------------------------------

_OPERATOR_ACTIONS = {  # `alphalab resume` is its own command: it also brings an interrupted lab back
    "pause": "Pause a running campaign: no new proposal or run until `alphalab resume`.",
    "stop": "End a running campaign now (the Strategist finishes it, naming you).",
}


_by = click.option(
    "--by", default=lambda: getpass.getuser(), show_default="your login", help="Who acts (recorded)."
)


def _operator_command(name: str, summary: str) -> click.Command:
    @click.command(name, help=summary)
    @click.argument("campaign_id", required=False)
    @_nats
    @_by
    @click.option("--reason", default="", help="Why (recorded in the event).")
    def command(campaign_id: str | None, nats_url: str | None, by: str, reason: str) -> None:
        _act(nats_url, campaign_id, name, by=by, reason=reason)

    return command


@main.command()
@click.argument("proposal_id")
@_campaign
@_nats
@_by
@click.option("--reason", default="", help="Why (recorded in the event).")
def cancel(proposal_id: str, campaign_id: str | None, nats_url: str | None, by: str, reason: str) -> None:
    """Cancel a proposal of a running campaign (a running one is killed)."""
    _act(nats_url, campaign_id, "cancel", by=by, reason=reason, proposal_id=proposal_id)


@main.command()
@click.argument("text")
@_campaign
@_nats
@_by
def hint(text: str, campaign_id: str | None, nats_url: str | None, by: str) -> None:
    """Give the Strategist a hint: the LLM brain reads TEXT; the builtin brain fixes the `name=value`
    pairs in it (e.g. "model=mlp lags=48") in its next proposal."""
    _act(nats_url, campaign_id, "hint", by=by, text=text)


@main.command()
@click.option(
    "--config", "config_json", required=True, help='The parameter values, as JSON: \'{"model": "mlp"}\'.'
)
@click.option("--hypothesis", default="", help="What you expect, and why (recorded).")
@_campaign
@_nats
@_by
def propose(
    config_json: str, hypothesis: str, campaign_id: str | None, nats_url: str | None, by: str
) -> None:
    """Run an experiment of your own: the Strategist proposes it like its own, or refuses it saying why."""
    try:
        config = json.loads(config_json)
    except ValueError as err:
        raise ConfigError(f"--config: not JSON ({err})") from None
    _act(nats_url, campaign_id, "propose", by=by, config=config, reason=hypothesis)


def _paused_campaign(nats_url: str, campaign_id: str | None) -> str | None:
    """The campaign (CAMPAIGN, or else the latest paused one) that the lab at `nats_url` holds paused;
    None if none is, or if no lab answers there (then `resume` brings the lab back instead)."""
    from shared.bus import Bus
    from shared.errors import NatsUnavailable
    from shared.live import fold_stream

    async def look() -> str | None:
        try:
            bus = await Bus.connect(nats_url, Producer(service="cli", instance="resume"), connect_timeout=2)
        except NatsUnavailable:
            return None
        try:
            lab = await fold_stream(bus, campaign_id=campaign_id)
        finally:
            await bus.close()
        paused = [
            cid for cid, view in lab.campaigns.items() if view.paused is not None and view.status == "running"
        ]
        return paused[-1] if paused else None

    return asyncio.run(look())


def _act(nats_url: str | None, campaign_id: str | None, name: str, **fields: Any) -> None:
    from shared.actions import act, action
    from shared.bus import Bus
    from shared.live import fold_stream

    settings = Settings.load(nats_url=nats_url)
    if not settings.nats_url:
        raise ConfigError("actions go to the running lab: give --nats-url or set ALPHALAB_NATS_URL")
    asked = action(name, **fields)

    async def publish() -> str:
        bus = await Bus.connect(settings.nats_url or "", Producer(service="cli", instance="operator"))
        try:
            lab = await fold_stream(bus, campaign_id=campaign_id)
            running = [cid for cid, view in lab.campaigns.items() if view.status == "running"]
            chosen = campaign_id or (running[-1] if running else None)
            if chosen is None:
                raise ConfigError("no campaign is running; name one")
            event = await act(bus, lab.campaigns.get(chosen), asked, chosen)
            return f"{event.type} of campaign {chosen} by {fields['by']} (event {event.event_id})"
        finally:
            await bus.close()

    click.echo(asyncio.run(publish()))


# --- projections -----------------------------------------------------------------------------


@main.command()
@_home
@_campaign
@click.option("--json", "as_json", is_flag=True, help="Print one machine-readable JSON document.")
def replay(home: Path | None, campaign_id: str | None, as_json: bool) -> None:
    """Rebuild every projection (leaderboard, playbook, kanban, budget) from the ledger and print it."""
    with _open_ledger(home) as ledger:
        lab = fold(ledger.events(campaign_id=campaign_id))
    if campaign_id is not None and campaign_id not in lab.campaigns:
        raise ConfigError(f"campaign {campaign_id!r} has no events in the ledger")
    if as_json:
        document = {
            "position": lab.position,
            "campaigns": {cid: snapshot(v) for cid, v in lab.campaigns.items()},
        }
        click.echo(json.dumps(document, indent=2))
        return
    console = Console()
    for view in lab.campaigns.values():
        console.print(render.campaign(view))
    if not lab.campaigns:
        console.print("The ledger holds no events yet.")


@main.command()
@_home
@_campaign
@click.option("--live", is_flag=True, help="Fold the live stream over NATS instead of the ledger file.")
def leaderboard(home: Path | None, campaign_id: str | None, live: bool) -> None:
    """Print the leaderboard of a campaign (default: the latest)."""
    Console().print(render.leaderboard_table(_current(home, campaign_id, live)))


@main.command()
@_home
@_campaign
@click.option("--live", is_flag=True, help="Fold the live stream over NATS instead of the ledger file.")
def playbook(home: Path | None, campaign_id: str | None, live: bool) -> None:
    """Print the playbook of a campaign (default: the latest): its lessons and the runs behind each."""
    Console().print(render.playbook_table(_current(home, campaign_id, live)))


@main.command()
@_home
@_campaign
def cost(home: Path | None, campaign_id: str | None) -> None:
    """What the LLM brain spent, by role and model: calls, tokens (cached too), USD, latency."""
    from shared.projections.spend import spend

    with _open_ledger(home) as ledger:
        spent = spend(ledger.events(campaign_id=campaign_id, event_type="llm-call-finished"))
    if not spent.total.calls:
        raise ConfigError(
            "no model calls in this lab's event log" + (f" for {campaign_id}" if campaign_id else "")
        )
    console = Console()
    console.width = max(console.width, 120)  # rich falls back to 80 columns in a pipe, which cuts the table
    console.print(render.cost_table(spent))


@main.command()
@click.argument("who")
@_home
@_campaign
def transcript(who: str, home: Path | None, campaign_id: str | None) -> None:
    """Print the agent turns of WHO: a run id (p003-1), a proposal id (p003), an agent or a role."""
    from alphalab.artifacts import matching_turns, read_blobs
    from shared.agents.transcript import render as render_transcript

    settings = Settings.load(home=home)
    with _open_ledger(home) as ledger:
        turns = matching_turns(ledger.events(campaign_id=campaign_id, event_type="agent-turn"), who)
    if not turns:
        raise ConfigError(f"no agent turns of {who!r} in this lab's event log")
    for event in turns:
        digest = event.payload.transcript_digest  # type: ignore[attr-defined]
        folder = settings.home / "campaigns" / event.campaign_id
        [document] = read_blobs(folder, "transcripts", [digest], settings.nats_url)
        click.echo(render_transcript(document))


@main.command()
@click.argument("run_id")
@_home
@_campaign
def diff(run_id: str, home: Path | None, campaign_id: str | None) -> None:
    """The code a run graded against its parent's (the adapter's own candidate if it has none)."""
    from alphalab.artifacts import read_blobs
    from shared import bundles
    from shared.blobs import digest_of
    from shared.domain import load_domain

    settings = Settings.load(home=home)
    with _open_ledger(home) as ledger:
        results = [
            e
            for kind in ("run-finished", "run-failed")
            for e in ledger.events(campaign_id=campaign_id, event_type=kind)
            if e.payload.run_id == run_id  # type: ignore[attr-defined]
        ]
        started = (
            next(ledger.events(campaign_id=results[0].campaign_id, event_type="campaign-started"), None)
            if results
            else None
        )
    if not results or results[0].payload.code_digest is None:  # type: ignore[attr-defined]
        raise ConfigError(f"no graded code of run {run_id!r} in this lab's event log")
    result = results[0].payload
    domain = load_domain(started.payload.domain)  # type: ignore[union-attr]
    parent = bundles.pack(domain.root, domain.candidate_files())
    if result.code_digest == digest_of(parent):  # type: ignore[attr-defined]
        click.echo("(the adapter's own candidate, unchanged)")
        return
    folder = settings.home / "campaigns" / results[0].campaign_id
    [child] = read_blobs(folder, "candidates", [result.code_digest], settings.nats_url)  # type: ignore[attr-defined]
    if result.parent_digest:  # type: ignore[attr-defined]
        [parent] = read_blobs(folder, "candidates", [result.parent_digest], settings.nats_url)  # type: ignore[attr-defined]
    click.echo(bundles.diff(parent, child) or "(no change from its parent)")


for _name, _summary in _OPERATOR_ACTIONS.items():
    main.add_command(_operator_command(_name, _summary))


def _current(home: Path | None, campaign_id: str | None, live: bool) -> CampaignView:
    lab = _live_lab(campaign_id) if live else _ledger_lab(home, campaign_id)
    if not lab.campaigns:
        raise ConfigError("no campaign has any events yet")
    if campaign_id is None:
        return list(lab.campaigns.values())[-1]
    if campaign_id not in lab.campaigns:
        raise ConfigError(f"campaign {campaign_id!r} has no events (known: {', '.join(lab.campaigns)})")
    return lab.campaigns[campaign_id]


def _ledger_lab(home: Path | None, campaign_id: str | None) -> Lab:
    with _open_ledger(home) as ledger:
        return fold(ledger.events(campaign_id=campaign_id))


def _live_lab(campaign_id: str | None) -> Lab:
    from shared.bus import Bus
    from shared.live import fold_stream

    settings = Settings.load()
    if not settings.nats_url:
        raise ConfigError("--live reads the bus: set ALPHALAB_NATS_URL (printed by `alphalab up`)")

    async def read() -> Lab:
        bus = await Bus.connect(settings.nats_url or "", Producer(service="cli", instance="live"))
        try:
            return await fold_stream(bus, campaign_id=campaign_id)
        finally:
            await bus.close()

    return asyncio.run(read())


def _open_ledger(home: Path | None) -> Ledger:
    path = Settings.load(home=home).ledger_path
    return read_only(path, "stop `alphalab up`, or use --live with ALPHALAB_NATS_URL set")


def _utc(moment: datetime | None) -> datetime | None:
    """A time given without an offset is UTC, like every timestamp in the log."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _interrupt(*_: object) -> NoReturn:
    raise KeyboardInterrupt
