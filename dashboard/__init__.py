"""The lab dashboard: a web page that watches campaigns live from the bus, or audits them from the ledger.

timeline.py  the dashboard's copy of the event log: the lab now, and as it was at any position
cards.py     what a kanban card shows: its proposal and its runs (a pure fold, like the projections)
pages.py     the JSON the page renders, built from the projections (pure, bounded in size)
sources.py   where the events come from: the JetStream stream (live) or the DuckDB ledger (audit)
app.py       the ASGI app: the page, its JSON API, and server-sent events with catch-up
static/      the page itself (plain HTML, CSS and JS: nothing to build)
"""
