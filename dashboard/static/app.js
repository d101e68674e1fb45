// The AlphaLab dashboard page: renders what the server folds from the event log (dashboard/pages.py).
// Live pages come pushed as server-sent events; the browser never polls. Time travel asks for the page,
// and the turns, playbook, report and code, as of an earlier position, and holds them until "Back to live".
"use strict";

const $ = (selector) => document.querySelector(selector);
const state = { source: null, campaign: null, live: null, at: null, lastLine: 0, oldest: null, origin: "", values: [], tickets: {}, openAt: null };

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

function number(value, digits = 4) {
  if (value === null || value === undefined) return "–";
  return Math.abs(value) >= 1e5 || (value !== 0 && Math.abs(value) < 1e-3) ? value.toExponential(2)
    : Number(value.toPrecision(digits)).toString();
}

function seconds(value) {
  if (value === null || value === undefined) return "–";
  return value < 120 ? `${value.toFixed(1)} s` : `${(value / 60).toFixed(1)} min`;
}

async function fetchJson(path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function campaignPath() {
  return `/api/campaigns/${encodeURIComponent(state.campaign)}`;
}

function latest(kind) {
  // Answers can come back out of order: only the latest request of each kind is drawn.
  const ticket = (state.tickets[kind] = (state.tickets[kind] || 0) + 1);
  return () => state.tickets[kind] === ticket;
}

// --- routing ---------------------------------------------------------------------------------

async function route() {
  if (!state.origin) state.origin = (await fetchJson("/api/campaigns")).source;
  const match = location.hash.match(/^#\/campaign\/([^@]+)(?:@(\d+))?$/); // @k: as of event k
  if (state.source) state.source.close();
  state.source = null;
  if (match) openCampaign(decodeURIComponent(match[1]), match[2] ? Number(match[2]) : null);
  else openCampaigns();
}

function openCampaigns() {
  $("#campaigns-view").hidden = false;
  $("#campaign-view").hidden = true;
  $("#where").textContent = "";
  const source = new EventSource("/api/campaigns/stream");
  source.onopen = () => { $("#connection").textContent = state.origin; };
  source.onerror = () => { $("#connection").textContent = "reconnecting…"; };
  source.onmessage = (message) => listCampaigns(JSON.parse(message.data).campaigns);
  state.source = source;
}

function listCampaigns(campaigns) {
  const body = $("#campaigns tbody");
  body.replaceChildren(...campaigns.map((c) => {
    const row = el("tr", { "data-campaign": c.campaign_id },
      el("td", {}, c.campaign_id), el("td", {}, c.status), el("td", {}, c.domain), el("td", {}, c.brain),
      el("td", {}, c.best ? `${number(c.best.mean)} (${c.best.label})` : "–"),
      el("td", {}, c.best_baseline ? `${number(c.best_baseline.mean)} (${c.best_baseline.label})` : "–"),
      el("td", {}, c.improvement === null ? "–" : `${c.improvement >= 0 ? "+" : ""}${c.improvement.toFixed(1)}%`),
      el("td", {}, c.experiments), el("td", {}, seconds(c.compute_seconds)), el("td", {}, `$${c.usd.toFixed(2)}`));
    row.onclick = () => { location.hash = `#/campaign/${encodeURIComponent(c.campaign_id)}`; };
    return row;
  }));
  $("#no-campaigns").hidden = campaigns.length > 0;
}

function openCampaign(campaignId, at) {
  $("#campaigns-view").hidden = true;
  $("#campaign-view").hidden = false;
  $("#where").textContent = campaignId;
  Object.assign(state, { campaign: campaignId, live: null, at: null, lastLine: 0, oldest: null, values: [], openAt: at });
  document.body.classList.remove("travelling");
  $("#live").hidden = true;
  $("#log").replaceChildren();
  const source = new EventSource(`${campaignPath()}/stream`);
  source.onopen = () => { $("#connection").textContent = state.origin; };
  source.onerror = () => { $("#connection").textContent = "reconnecting…"; };
  source.onmessage = (message) => receive(JSON.parse(message.data));
  state.source = source;
  loadFiles();
}

// --- live messages ---------------------------------------------------------------------------

function receive(message) {
  addLines(message.events || []);
  if (!message.page) return;
  const progress = message.page.progress; // a live page gets only the values it does not have yet
  state.values = progress.from === 0 ? progress.values : state.values.concat(progress.values);
  progress.values = state.values;
  state.live = message.page;
  Object.assign($("#travel"), { min: message.page.first, max: message.position });
  if (state.openAt !== null) { // the page was opened at an event (a link to a historical view)
    travelToPosition(state.openAt);
    state.openAt = null;
  } else if (state.at === null) render(message.page);
  else $("#live").textContent = `Back to live (event ${message.position})`; // drawn on the way back
}

const FILE_EVENTS = new Set(["agent-turn", "playbook-revised", "exploration-finished"]);

function addLines(lines) {
  const log = $("#log");
  if (lines.some((line) => FILE_EVENTS.has(line.type)) && state.at === null) loadFiles();
  for (const line of lines) {
    if (line.position <= state.lastLine) continue; // the server sends each once; a guard all the same
    state.lastLine = line.position;
    if (state.oldest === null) state.oldest = line.position;
    log.prepend(logLine(line));
  }
}

function logLine(line) {
  const item = el("li", { "data-position": line.position, title: `${line.event_id} (travel to this event)`,
    class: later(line.position) ? "later" : "" },
    `${line.position}  ${line.at.slice(11, 19)}  `, el("span", { class: "type" }, line.type),
    `  ${line.producer}  ${line.text}`);
  item.onclick = () => travelToPosition(line.position);
  return item;
}

function later(position) {
  return state.at !== null && position > state.at;
}

async function older() {
  if (state.oldest === null) return;
  const path = `${campaignPath()}/events?before=${state.oldest}`;
  const { events } = await fetchJson(path);
  for (const line of events) {
    $("#log").append(logLine(line));
    state.oldest = line.position;
  }
}

// --- time travel -----------------------------------------------------------------------------

// state.at is the position the page shows, null while it follows the log. Live messages keep coming
// while it is away: they update state.live and the picker's range, and are drawn on the way back.

function asOf() {
  return state.at === null ? "" : `?at=${state.at}`;
}

function travelToPosition(position) {
  if (state.live && position >= state.live.position) backToLive();
  else travel(`at=${position}`);
}

function travelToTime(local) {
  if (local) travel(`time=${encodeURIComponent(local)}`); // the input's time has no offset: UTC, as the picker says
}

async function travel(query) {
  if (!state.live) return;
  const asked = latest("page");
  let page;
  try {
    page = await fetchJson(`${campaignPath()}?${query}`);
  } catch (error) {
    if (asked()) $("#as-of").textContent = "no event of this campaign by then";
    return;
  }
  if (!asked()) return;
  if (page.position >= state.live.position) backToLive();
  else show(page.position, page);
}

function backToLive() {
  latest("page"); // a travel still on its way is not drawn
  if (state.live) show(null, state.live);
}

function show(at, page) {
  state.at = at;
  const here = `#/campaign/${encodeURIComponent(state.campaign)}`;
  history.replaceState(null, "", at === null ? here : `${here}@${at}`); // a link to what is shown
  document.body.classList.toggle("travelling", at !== null);
  $("#live").hidden = at === null;
  $("#live").textContent = `Back to live (event ${state.live.position})`;
  for (const line of $("#log").children) line.classList.toggle("later", later(Number(line.dataset.position)));
  render(page);
  loadFiles();
}

function utc(iso) {
  return new Date(iso).toISOString().slice(0, 19); // what a datetime-local input holds
}

// --- rendering -------------------------------------------------------------------------------

function render(page) {
  const time = utc(page.time);
  $("#as-of").textContent = `${state.at === null ? "now: event" : "as of event"} ${page.position}, ${time.replace("T", " ")} UTC`;
  $("#travel").value = page.position;
  for (const [input, value] of [[$("#travel-at"), page.position], [$("#travel-time"), time]]) {
    if (document.activeElement !== input) input.value = value; // not while typed in
  }
  renderSummary(page);
  renderActions(page);
  renderKanban(page);
  renderLeaderboard(page.leaderboard);
  renderProgress(page.progress, page.leaderboard.direction);
  renderTimeline(page.timeline, page.budget.elapsed_seconds);
  $("#playbook-revision").textContent = page.playbook.revision ? `revision ${page.playbook.revision}` : "";
  $("#playbook").replaceChildren(...page.playbook.lessons.map((lesson) => el("li", {}, lesson.text, " ", ...runLinks(lesson.run_ids))));
}

function runLinks(runIds) {
  // A run id is its proposal's id and the attempt's number (p003-1): the link opens the card.
  return runIds.map((runId) => {
    const link = el("a", { class: "run", "data-run": runId }, runId);
    link.onclick = () => showCard(runId.replace(/-\d+$/, ""));
    return link;
  }).flatMap((link, i) => (i ? [" ", link] : [link]));
}

async function loadFiles() {
  const [asked, base, at] = [latest("files"), campaignPath(), asOf()];
  const [{ turns }, { revisions }] = await Promise.all([fetchJson(`${base}/turns${at}`), fetchJson(`${base}/playbook${at}`)]);
  if (!asked()) return;
  $("#no-turns").hidden = turns.length > 0;
  $("#turns tbody").replaceChildren(...turns.map((turn) => {
    const row = el("tr", { "data-turn": turn.event_id }, el("td", {}, turn.at.slice(11, 19)), el("td", {}, turn.role),
      el("td", {}, turn.agent), el("td", {}, turn.purpose), el("td", {}, turn.summary), el("td", {}, `$${turn.usd.toFixed(3)}`));
    if (turn.transcript) row.onclick = () => showTranscript(turn);
    return row;
  }));
  $("#playbook-history").replaceChildren(...revisions.map((r) => el("li", { "data-revision": r.revision },
    el("b", {}, `revision ${r.revision}`), ` ${r.at.slice(11, 19)} ${r.reason}`,
    el("ul", {}, ...r.added.map((t) => el("li", { class: "added" }, `+ ${t}`)), ...r.dropped.map((t) => el("li", { class: "dropped" }, `− ${t}`))))));
  try {
    const report = await fetchJson(`${base}/report${at}`);
    if (!asked()) return;
    $("#report").classList.remove("muted");
    $("#report").replaceChildren(el("pre", {}, report.markdown),
      ...report.plots.map((name) => el("img", { src: `${base}/plots/${encodeURIComponent(name)}${at}`, alt: name, title: name })));
  } catch (error) {
    if (!asked()) return;
    $("#report").classList.add("muted");
    $("#report").textContent = "Not written yet.";
  }
}

async function showTranscript(turn) {
  const { text } = await fetchJson(`${campaignPath()}/transcripts/${encodeURIComponent(turn.transcript)}${asOf()}`);
  $("#card-body").replaceChildren(el("h3", {}, `${turn.role} turn ${turn.turn}`, " ", el("span", { class: "muted" }, turn.agent)),
    el("pre", { class: "transcript" }, text));
  $("#cancel-card").hidden = true;
  $("#card-panel").hidden = false;
}

async function showCode(runId) {
  const code = await fetchJson(`${campaignPath()}/runs/${encodeURIComponent(runId)}/code${asOf()}`);
  $("#card-body").replaceChildren(el("h3", {}, `Code of ${runId}`), el("h4", {}, "Diff against its parent"),
    code.diff ? highlighted("diff", code.diff_html, code.diff) : el("p", { class: "muted" }, "None: the same files as its parent."),
    ...Object.entries(code.files).map(([name, text]) =>
      el("details", { "data-file": name }, el("summary", {}, name), highlighted("file", code.highlighted[name], text))));
  $("#cancel-card").hidden = true;
}

function highlighted(kind, html, text) {
  // The server's Pygments HTML, in which every character of the candidate's (untrusted) text is escaped.
  // Parsed inert in a template all the same, and shown only if it holds nothing but classed spans and
  // divs; else the plain text.
  const template = document.createElement("template");
  template.innerHTML = html;
  const inert = [...template.content.querySelectorAll("*")].every((node) =>
    ["SPAN", "DIV"].includes(node.tagName) && [...node.attributes].every((a) => a.name === "class"));
  const pre = el("pre", { class: `code ${kind}` });
  if (inert) pre.append(template.content);
  else pre.textContent = text;
  return pre;
}

function renderActions(page) {
  const acting = state.origin === "live" && state.at === null && page.status === "running";
  $("#actions").hidden = !acting;
  $("#pause").hidden = page.paused !== null;
  $("#resume").hidden = page.paused === null;
  $("#stop").disabled = page.stop_requested !== null;
}

async function perform(body) {
  const response = await fetch(`${campaignPath()}/actions`, { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ reason: $("#reason").value, ...body }) });
  const answer = await response.json();
  $("#action-result").textContent = response.ok ? `${answer.type} by ${answer.by}` : answer.error;
  return response.ok;
}

function renderSummary(page) {
  const b = page.budget;
  const items = [
    ["status", page.status], ["domain", page.domain], ["brain", page.brain], ["harness", page.harness],
    ["experiments", b.max_experiments ? `${b.experiments} / ${b.max_experiments}` : b.experiments],
    ["failed", b.failed], ["compute", seconds(b.compute_seconds)], ["elapsed", seconds(b.elapsed_seconds)],
    ["cost", `$${b.usd.toFixed(2)}`], ["tokens", `${b.input_tokens} in / ${b.output_tokens} out`],
  ];
  if (page.failure) items.push(["failure", page.failure]);
  if (page.paused) items.push(["paused", `by ${page.paused.by}${page.paused.reason ? `: ${page.paused.reason}` : ""}`]);
  if (page.stop_requested) items.push(["stop asked", `by ${page.stop_requested.by}`]);
  $("#summary").replaceChildren(...items.map(([k, v]) => el("span", { "data-field": k }, `${k} `, el("b", {}, v))));
}

function renderKanban(page) {
  $("#kanban").replaceChildren(...Object.entries(page.kanban).map(([column, { count, cards }]) =>
    el("div", { class: "column", "data-column": column },
      el("h4", {}, `${column} `, el("span", { class: "count" }, count)),
      ...cards.map((card) => cardTile(card)),
      count > cards.length ? el("div", { class: "muted" }, `… ${count - cards.length} more`) : "")));
}

function cardTile(card) {
  const config = Object.entries(card.config).map(([k, v]) => `${k}=${typeof v === "number" ? number(v, 3) : v}`).join(" ");
  const tile = el("div", { class: `card ${card.verdict || card.state}`, "data-card": card.proposal_id },
    el("div", { class: "id" }, card.proposal_id, card.changes_code ? " ✎" : ""),
    card.hypothesis ? el("div", { class: "hyp" }, card.hypothesis) : "",
    el("div", { class: "config" }, config),
    el("div", {}, [card.worker, card.attempts > 1 ? `${card.attempts} attempts` : "", card.seconds !== null ? seconds(card.seconds) : "",
      card.value !== null ? `= ${number(card.value)}` : "", card.verdict || "", card.error ? "error" : ""].filter(Boolean).join(" · ")));
  tile.onclick = () => showCard(card.proposal_id);
  return tile;
}

async function showCard(proposalId) {
  const card = await fetchJson(`${campaignPath()}/cards/${encodeURIComponent(proposalId)}${asOf()}`);
  $("#card-body").replaceChildren(
    el("h3", {}, card.proposal_id, " ", el("span", { class: "muted" }, card.state)),
    card.hypothesis ? el("p", {}, card.hypothesis) : "",
    card.change ? el("div", {}, el("h4", {}, "Code change asked"), el("pre", {}, card.change)) : "",
    el("h4", {}, "Configuration"), el("pre", {}, JSON.stringify(card.config, null, 2)),
    el("h4", {}, "Attempts"),
    ...card.attempts.map((a) => el("div", { class: "attempt" },
      el("b", {}, a.run_id), ` on ${a.worker}, ${a.started_at.slice(11, 19)}`, a.ended_at ? `–${a.ended_at.slice(11, 19)}` : " (running)",
      el("div", {}, a.value !== null ? `value ${number(a.value, 6)}` : "", a.verdict ? ` · ${a.verdict}` : "", a.summary ? ` · ${a.summary}` : ""),
      a.error ? el("pre", {}, a.error) : "",
      a.log_tail ? el("details", {}, el("summary", {}, "Log (its last lines)"), el("pre", {}, a.log_tail)) : "",
      a.debrief ? el("div", { class: "debrief" }, el("h4", {}, "Debrief"), el("p", {}, a.debrief)) : "",
      a.code_digest ? Object.assign(el("button", { type: "button", "data-code": a.run_id }, "Code and diff"), { onclick: () => showCode(a.run_id) }) : "",
      Object.keys(a.metrics).length ? el("pre", {}, JSON.stringify(a.metrics, null, 1)) : "")),
    el("h4", {}, "History"),
    el("ol", {}, ...card.history.map(([s, id, at]) => el("li", {}, `${at.slice(11, 19)} ${s}`, el("span", { class: "muted" }, ` ${id}`)))));
  const cancel = $("#cancel-card");
  cancel.hidden = state.origin !== "live" || state.at !== null || ["analyzed", "cancelled", "dead"].includes(card.state);
  cancel.onclick = async () => { if (await perform({ action: "cancel", proposal_id: card.proposal_id })) cancel.hidden = true; };
  $("#card-panel").hidden = false;
}

function renderLeaderboard(board) {
  $("#leaderboard thead").replaceChildren(el("tr", {}, el("th", {}, "#"), el("th", {}, "configuration"),
    el("th", {}, `${board.metric || "metric"} (${board.direction === "minimize" ? "lower" : "higher"} is better)`),
    el("th", {}, "n"), el("th", {}, "vs best baseline"), ...board.secondary.map((name) => el("th", {}, name))));
  $("#leaderboard tbody").replaceChildren(...board.rows.map((row) =>
    el("tr", { class: `${row.baseline ? "baseline" : ""} ${row.champion ? "champion" : ""}`, "data-label": row.label },
      el("td", {}, row.rank), el("td", { class: "label" }, row.label + (row.changes_code ? " ✎" : "")),
      el("td", {}, row.n > 1 ? `${number(row.mean)} ± ${number(row.spread, 2)}` : number(row.mean)),
      el("td", {}, row.n), el("td", {}, row.improvement === null ? "" : `${row.improvement >= 0 ? "+" : ""}${row.improvement.toFixed(1)}%`),
      ...board.secondary.map((name) => el("td", {}, number(row.secondary[name]))))));
  $("#leaderboard-more").textContent = board.total > board.rows.length ? `${board.total - board.rows.length} more rows` : "";
}

function shape(tag, attributes, text) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function renderTimeline(timeline, elapsed) {
  // Phases as bars on one lane, the cumulative model spend (USD) as a line above; seconds since start.
  const svg = $("#timeline");
  svg.replaceChildren();
  const ends = timeline.phases.map((p) => p.end ?? elapsed).concat(timeline.spend.map((s) => s[0]), [elapsed, 1]);
  const span = ends.reduce((a, b) => Math.max(a, b));
  const [left, right] = [60, 1190];
  const x = (t) => left + (t / span) * (right - left);
  const colours = { explore: "#8e6cbf", harness: "#c08a00", experiment: "#2356a8", report: "#1f7a4a", adapter: "#6b7075" };
  for (const p of timeline.phases) {
    const end = p.end ?? elapsed;
    svg.append(shape("rect", { x: x(p.start), y: 120, width: Math.max(2, x(end) - x(p.start)), height: 24,
      fill: colours[p.phase] || "#999", "data-phase": p.phase }, undefined));
    svg.lastChild.append(shape("title", {}, `${p.phase}: ${seconds(p.start)} – ${p.end === null ? "now" : seconds(p.end)} ${p.outcome}`));
    svg.append(shape("text", { x: x(p.start) + 4, y: 137, "font-size": 12, fill: "#fff" }, p.phase));
  }
  svg.append(shape("text", { x: left - 6, y: 137, "text-anchor": "end", "font-size": 11, fill: "#6b7075" }, "phases"));
  svg.append(shape("text", { x: right, y: 162, "text-anchor": "end", "font-size": 11, fill: "#6b7075" },
    `${seconds(span)} since the campaign started`));
  if (!timeline.spend.length) {
    svg.append(shape("text", { x: left, y: 60, "font-size": 12, fill: "#6b7075" }, "no model calls (the builtin brain)"));
    return;
  }
  const top = timeline.spend[timeline.spend.length - 1];
  const y = (usd) => 105 - (usd / (top[1] || 1)) * 95;
  const path = timeline.spend.map(([t, usd], i) => `${i ? "L" : "M"}${x(t)},${y(usd)}`).join("");
  svg.append(shape("path", { d: path, fill: "none", stroke: "#b3261e", "stroke-width": 2, "data-series": "usd" }));
  svg.append(shape("text", { x: left - 6, y: 14, "text-anchor": "end", "font-size": 11, fill: "#6b7075" }, `$${top[1].toFixed(2)}`));
  svg.append(shape("text", { x: x(top[0]) - 4, y: y(top[1]) - 4, "text-anchor": "end", "font-size": 11, fill: "#b3261e" },
    `$${top[1].toFixed(3)}, ${top[2].toLocaleString()} tokens`));
}

function renderProgress(progress, direction) {
  const svg = $("#progress");
  const values = progress.values;
  svg.replaceChildren();
  if (!values.length) {
    const empty = shape("text", { x: 300, y: 160, "text-anchor": "middle", fill: "#6b7075" });
    empty.textContent = "no graded experiment yet";
    svg.append(empty);
    return;
  }
  const all = progress.baseline === null ? values : values.concat([progress.baseline]);
  let low = all.reduce((a, b) => Math.min(a, b)), high = all.reduce((a, b) => Math.max(a, b));
  if (low === high) { low -= 1; high += 1; }
  const [left, right, top, bottom] = [50, 590, 10, 290];
  const x = (i) => left + (values.length === 1 ? 0 : (i / (values.length - 1)) * (right - left));
  const y = (v) => bottom - ((v - low) / (high - low)) * (bottom - top);
  svg.append(shape("line", { x1: left, x2: left, y1: top, y2: bottom, stroke: "#999" }));
  svg.append(shape("line", { x1: left, x2: right, y1: bottom, y2: bottom, stroke: "#999" }));
  for (const v of [low, high]) {
    const label = shape("text", { x: left - 4, y: y(v) + 4, "text-anchor": "end", "font-size": 11, fill: "#6b7075" });
    label.textContent = number(v, 3);
    svg.append(label);
  }
  const axis = shape("text", { x: right, y: bottom + 22, "text-anchor": "end", "font-size": 11, fill: "#6b7075" });
  axis.textContent = `experiment (${values.length} graded; ${direction === "minimize" ? "lower" : "higher"} is better)`;
  svg.append(axis);
  if (progress.baseline !== null) {
    svg.append(shape("line", { x1: left, x2: right, y1: y(progress.baseline), y2: y(progress.baseline),
      stroke: "#b3261e", "stroke-dasharray": "4 3", "data-series": "baseline" }));
  }
  const points = shape("g", { fill: "#2356a8", "fill-opacity": 0.6, "data-series": "values" });
  values.forEach((v, i) => points.append(shape("circle", { cx: x(i), cy: y(v), r: values.length > 500 ? 1.2 : 3 })));
  svg.append(points);
  const better = direction === "minimize" ? Math.min : Math.max;
  let best = values[0];
  const steps = values.map((v, i) => { best = better(best, v); return `${i ? "L" : "M"}${x(i)},${y(best)}`; }).join("");
  svg.append(shape("path", { d: steps, fill: "none", stroke: "#1f7a4a", "stroke-width": 2, "data-series": "best" }));
}

// --- wiring ----------------------------------------------------------------------------------

$("#travel").addEventListener("input", (e) => { $("#travel-at").value = e.target.value; }); // where a drag would land
$("#travel").addEventListener("change", (e) => travelToPosition(Number(e.target.value)));
$("#travel-at").addEventListener("change", (e) => travelToPosition(Number(e.target.value)));
$("#travel-time").addEventListener("change", (e) => travelToTime(e.target.value));
$("#live").addEventListener("click", backToLive);
$("#give-hint").addEventListener("click", () => perform({ action: "hint", text: $("#hint-text").value }));
$("#submit-proposal").addEventListener("click", () => {
  let config;
  try { config = JSON.parse($("#proposal-config").value); } catch (error) {
    $("#action-result").textContent = `not JSON: ${error.message}`;
    return;
  }
  perform({ action: "propose", config }); // #reason, if any, goes with it as the hypothesis
});
for (const button of document.querySelectorAll("#actions [data-action]")) {
  button.addEventListener("click", () => perform({ action: button.dataset.action }));
}
$("#older").addEventListener("click", older);
$("#close-card").addEventListener("click", () => { $("#card-panel").hidden = true; });
window.addEventListener("hashchange", route);
route();
