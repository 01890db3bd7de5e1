// Desk: state, equity and PnL (chart), live ticks, positions, open orders, armed stops, risk headroom per limit,
// and the admin controls (halt, resume, kill) behind a confirmation dialog.
import { api } from "./api.js";
import { plot } from "./charts.js";
import { badge, el, fmt, kpi, pct, qty, replace, table, time } from "./util.js";

const LIVE = new Set(["approved", "submitted", "partially_filled", "unresolved"]);
const SAMPLES = "cqa.equitySamples";
let nodes = null, daily = [], dailyAt = 0, ticks = {};

function samples() {
  try { return JSON.parse(sessionStorage.getItem(SAMPLES) || "[]"); } catch { return []; }
}
function addSample(ms, equity) {
  const list = samples();
  if (!list.length || ms - list[list.length - 1][0] >= 1000) list.push([ms, equity]);
  sessionStorage.setItem(SAMPLES, JSON.stringify(list.slice(-600)));
  return list;
}

export function mount(root, ctx) {
  const can = ctx.me.can;
  nodes = {
    state: el("div", { id: "desk-state" }),
    controls: el("div", { class: "row" }),
    equity: el("div", { id: "equity" }),
    ticks: el("div", { id: "ticks" }),
    headroom: el("div", { id: "headroom" }),
    positions: el("div", { id: "positions" }),
    orders: el("div", { id: "open-orders" }),
    stops: el("div", { id: "stops" }),
  };
  if (can.admin) {
    const act = (path, title, text, label) => async () => {
      const reason = await ctx.confirm(title, text, label);
      if (reason === null) return;
      try {
        const out = await api(path, { method: "POST", body: { reason: reason || `${label} from the web desk` } });
        ctx.toast(`${label}: desk ${out.state || out.desk?.state || "done"}`);
        await refresh(ctx);
      } catch (err) { ctx.error(`${label} refused: ${err.message}`); }
    };
    nodes.controls.append(
      el("button", { id: "halt", type: "button", class: "danger", onclick: act("v1/desk/halt", "Halt the desk?",
        "No new risk is taken until a person resumes. Open orders stay.", "Halt") }, "Halt"),
      el("button", { id: "resume", type: "button", class: "ok", onclick: act("v1/desk/resume", "Resume the desk?",
        "The desk takes new risk again within its limits.", "Resume") }, "Resume"),
      el("button", { id: "kill", type: "button", class: "danger", onclick: act("v1/desk/kill",
        "Kill switch: cancel every open order and halt?", "Open orders are cancelled and the desk halts.",
        "Kill") }, "Kill switch"),
    );
  } else {
    nodes.controls.append(el("p", { class: "muted", text: "Halt and kill need a key with the admin scope." }));
  }
  replace(root,
    el("h1", { text: "Desk" }),
    el("div", { class: "grid" },
      el("section", { class: "card", "aria-labelledby": "h-state" }, el("h2", { id: "h-state", text: "State" }),
        nodes.state, nodes.controls),
      el("section", { class: "card", "aria-labelledby": "h-ticks" }, el("h2", { id: "h-ticks", text: "Live ticks" }),
        nodes.ticks),
      el("section", { class: "card wide", "aria-labelledby": "h-eq" }, el("h2", { id: "h-eq", text: "Equity and PnL" }),
        nodes.equity),
      el("section", { class: "card", "aria-labelledby": "h-pos" }, el("h2", { id: "h-pos", text: "Positions" }),
        nodes.positions),
      el("section", { class: "card", "aria-labelledby": "h-head" },
        el("h2", { id: "h-head", text: "Risk headroom" }), nodes.headroom),
      el("section", { class: "card", "aria-labelledby": "h-orders" },
        el("h2", { id: "h-orders", text: "Open orders" }), nodes.orders),
      el("section", { class: "card", "aria-labelledby": "h-stops" },
        el("h2", { id: "h-stops", text: "Armed stops" }), nodes.stops),
    ));
}

export function unmount() { nodes = null; }

function headroomRows(risk, positions) {
  const L = risk.limits, m = risk.metrics, eq = m.equity;
  const rows = [
    ["Gross exposure", m.gross_exposure, L.max_gross_exposure, fmt],
    ["Net exposure", m.net_exposure === null ? null : Math.abs(m.net_exposure), L.max_net_exposure, fmt],
    ["Leverage", eq ? m.gross_exposure / eq : null, L.max_leverage, (x) => `${fmt(x, 2)}x`],
    ["Daily loss", risk.daily_loss_pct, L.max_daily_loss_pct, (x) => pct(x)],
    ["Drawdown", m.drawdown, L.max_drawdown_pct, (x) => pct(x)],
  ];
  for (const p of positions.positions || []) {
    if (p.value !== null && p.value !== undefined) {
      rows.push([`Position ${p.symbol}`, Math.abs(p.value), L.max_position_notional, fmt]);
    }
  }
  return rows.map(([name, used, limit, f]) => ({ name, used, limit, f,
    ratio: used === null || used === undefined || !limit ? null : used / limit }));
}

function renderHeadroom(risk, positions) {
  const rows = headroomRows(risk, positions);
  const meter = (r) => r.ratio === null ? "–" : el("meter", { min: 0, max: 1, low: 0.6, high: 0.85, optimum: 0,
    value: Math.min(1, r.ratio), "aria-label": `${r.name}: ${pct(r.ratio, 1)} of the limit used` });
  return [
    table("Use of each limit (headroom = what is left before the gate refuses)", [
      { label: "Limit", get: (r) => r.name },
      { label: "Used", num: true, get: (r) => r.used === null ? "unknown" : r.f(r.used) },
      { label: "Ceiling", num: true, get: (r) => r.f(r.limit) },
      { label: "Headroom", num: true, get: (r) => r.ratio === null ? "–" : pct(1 - r.ratio, 1) },
      { label: "Use", get: meter },
    ], rows),
    el("p", { class: "muted", text: `Per order: at most ${fmt(risk.limits.max_order_notional, 0)} notional, ` +
      `${risk.limits.max_orders_per_minute} orders a minute, price band ${pct(risk.limits.price_band_pct, 1)}.` }),
  ];
}

function renderEquity(risk) {
  const m = risk.metrics;
  const now = Date.now();
  const list = m.equity === null || m.equity === undefined ? samples() : addSample(now, m.equity);
  const today = new Date(now).toISOString().slice(0, 10);
  const points = daily.filter((p) => p.day < today).map((p) => [Date.parse(`${p.day}T23:59:59Z`), p.equity])
    .concat(list);
  const pnl = (m.realised_pnl ?? 0) + (m.unrealised_pnl ?? 0);
  return [
    el("div", { class: "kpis" },
      kpi("Equity", fmt(m.equity)),
      kpi("PnL", fmt(pnl), pnl >= 0 ? "good" : "bad"),
      kpi("Realised", fmt(m.realised_pnl)),
      kpi("Unrealised", fmt(m.unrealised_pnl)),
      kpi("Drawdown", pct(m.drawdown)),
      kpi("Daily loss", pct(risk.daily_loss_pct)),
      kpi("Peak", fmt(risk.peak_equity)),
      kpi("VaR 95%", fmt(m.var_hist_95)),
      kpi("Sharpe", fmt(m.sharpe))),
    plot({ title: "Equity", desc: `Equity over time: ${points.length} marks, now ${fmt(m.equity)}`, height: 200,
      series: [{ name: "equity", color: "#6cb6ff", points }] }),
    el("p", { class: "muted", text: "Daily closes from the desk, then this tab's marks every few seconds." }),
  ];
}

function renderTicks(symbols) {
  return table("Last price per symbol (polled)", [
    { label: "Symbol", get: (s) => s },
    { label: "Last", num: true, get: (s) => fmt(ticks[s]?.last) },
    { label: "Bid", num: true, get: (s) => fmt(ticks[s]?.bid) },
    { label: "Ask", num: true, get: (s) => fmt(ticks[s]?.ask) },
    { label: "24h", num: true, get: (s) => ticks[s]?.change_pct_24h === undefined ? "–" :
      el("span", { class: ticks[s].change_pct_24h >= 0 ? "good" : "bad", text: `${fmt(ticks[s].change_pct_24h)}%` }) },
    { label: "Source", get: (s) => ticks[s]?.error ? el("span", { class: "bad", text: ticks[s].error }) :
      `${ticks[s]?.exchange ?? "–"}${ticks[s]?.simulated ? " (simulated)" : ""}` },
    { label: "At", get: (s) => ticks[s]?.timestamp ?? "–" },
  ], symbols);
}

export async function refresh(ctx) {
  if (!nodes) return;
  const symbols = ctx.me.symbols;
  const tickerCalls = symbols.map((s) => api(`v1/market/ticker?symbol=${encodeURIComponent(s)}`)
    .then((t) => { ticks[s] = t; }, (err) => { ticks[s] = { error: err.message }; }));
  const needDaily = Date.now() - dailyAt > 30000;
  const [risk, positions, orders] = await Promise.all([
    api("v1/risk"), api("v1/positions"), api("v1/orders?limit=100"),
    needDaily ? api("v1/desk/equity").then((d) => { daily = d.points; dailyAt = Date.now(); }) : null,
    ...tickerCalls,
  ]);
  if (!nodes) return;
  ctx.setPending(risk.pending_approvals);
  replace(nodes.state,
    el("div", { class: "kpis" },
      el("div", { class: "kpi" }, el("span", { text: "Desk" }), el("span", { id: "desk-state-value" },
        badge(risk.desk_state))),
      kpi("Mode", risk.mode),
      kpi("Pending approvals", String(risk.pending_approvals)),
      kpi("Unresolved orders", String(risk.unresolved_orders))),
    el("p", { class: "muted", text: `Reason: ${risk.desk_reason ?? "–"}` }),
    Object.keys(risk.halted_symbols || {}).length ?
      el("p", { class: "warn", text: `Halted symbols: ${Object.keys(risk.halted_symbols).join(", ")}` }) : null,
    (risk.alerts || []).length ? el("ul", {}, risk.alerts.slice(-3).map((a) =>
      el("li", { class: "warn", text: typeof a === "string" ? a : JSON.stringify(a) }))) : null);
  replace(nodes.ticks, renderTicks(symbols));
  replace(nodes.equity, renderEquity(risk));
  replace(nodes.headroom, renderHeadroom(risk, positions));
  replace(nodes.positions,
    table("Positions, consolidated across venues", [
      { label: "Symbol", get: (p) => p.symbol },
      { label: "Qty", num: true, get: (p) => qty(p.qty) },
      { label: "Avg cost", num: true, get: (p) => fmt(p.avg_cost) },
      { label: "Mark", num: true, get: (p) => fmt(p.mark) },
      { label: "Value", num: true, get: (p) => fmt(p.value) },
      { label: "Unrealised", num: true, get: (p) => fmt(p.unrealised_pnl) },
      { label: "Realised", num: true, get: (p) => fmt(p.realised_pnl) },
    ], positions.positions || [], "flat"),
    el("p", { class: "muted", text: `Cash: ${Object.entries(positions.cash || {}).map(([v, a]) =>
      `${v} ${Object.entries(a).map(([c, x]) => `${fmt(x)} ${c}`).join(", ")}`).join("; ") || "–"}` }));
  const open = orders.orders.filter((o) => LIVE.has(o.state));
  replace(nodes.orders, table("Orders the desk is working (approved, submitted, partly filled, unresolved)", [
    { label: "Id", get: (o) => o.id },
    { label: "State", get: (o) => badge(o.state) },
    { label: "Side", get: (o) => o.request.side },
    { label: "Symbol", get: (o) => o.request.symbol },
    { label: "Qty", num: true, get: (o) => qty(o.proposed_qty ?? o.request.qty) },
    { label: "Filled", num: true, get: (o) => qty(o.filled_qty) },
    { label: "Type", get: (o) => o.request.type },
    { label: "Updated", get: (o) => time(o.updated_ms) },
  ], open));
  replace(nodes.stops, table("Stop rules armed, and who holds each (a venue or the desk)", [
    { label: "Symbol", get: (s) => s.symbol },
    { label: "Kind", get: (s) => s.kind },
    { label: "Trigger", num: true, get: (s) => fmt(s.trigger) },
    { label: "Qty", num: true, get: (s) => qty(s.qty) },
    { label: "Held by", get: (s) => (s.held_by || []).join(", ") },
  ], risk.stops || []));
}

