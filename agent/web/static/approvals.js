// Approvals: pending proposals with the risk gate's figures and the requester's reasoning; approve or reject with
// a key that has the `approve` scope. The desk decides (scope, four-eyes, the gate again at execution): the page
// shows what it answered. Polled, so proposals decided elsewhere (Slack, HTTP) leave the list on their own.
import { api } from "./api.js";
import { badge, el, fmt, pct, qty, replace, table, time } from "./util.js";

const TERMINAL = new Set(["filled", "rejected", "expired", "cancelled", "failed"]);
let nodes = null, last = { pending: [], recent: [] }, decisions = 0;
const watched = new Map(); // order id -> last known order (decided from this page)

export function mount(root, ctx) {
  const can = ctx.me.can;
  nodes = { pending: el("div", { id: "pending" }), recent: el("div", { id: "decided" }) };
  const notes = [];
  if (!can.approve) {
    notes.push(el("p", { class: "warn", id: "scope-note",
      text: "This key has no approve scope: the desk will refuse its approvals and rejections." }));
  }
  if (ctx.me.four_eyes) {
    notes.push(el("p", { class: "muted", text: "Four-eyes is on: nobody may approve a proposal they made." }));
  }
  replace(root,
    el("h1", { text: "Approvals" }),
    ...notes,
    el("section", { class: "card", "aria-labelledby": "h-pending" },
      el("h2", { id: "h-pending", text: "Pending proposals" }), nodes.pending),
    el("section", { class: "card", "aria-labelledby": "h-decided" },
      el("h2", { id: "h-decided", text: "Recently decided" }), nodes.recent));
}

export function unmount() { nodes = null; last = { pending: [], recent: [] }; }

async function decide(ctx, order, action) {
  let body;
  if (action === "reject") {
    const reason = await ctx.confirm("Reject this proposal?", `${order.request.side} ${qty(order.proposed_qty)} ` +
      `${order.request.symbol}`, "Reject");
    if (reason === null) return;
    body = { reason: reason || "rejected from the web desk" };
  }
  const status = document.getElementById(`status-${order.id}`);
  if (status) status.textContent = action === "approve" ? "approving…" : "rejecting…";
  try {
    const out = await api(`v1/approvals/${encodeURIComponent(order.id)}/${action}`, { method: "POST", body });
    watched.set(order.id, out.order);
    const state = out.order?.state ?? out.status;
    ctx.toast(`${order.id}: ${out.status}${state && state !== out.status ? ` (order ${state})` : ""}` +
      `${out.reasons?.length ? ` · ${out.reasons.join("; ")}` : ""}`);
    if (status) status.textContent = `${out.status}: order ${state}`;
    decisions += 1;  // a poll already in flight read the lists before this decision: it must not draw them
    if (out.order && nodes) {  // show the desk's answer at once; the refresh below confirms it
      last.pending = last.pending.filter((o) => o.id !== order.id);
      last.recent = [{ ...order, ...out.order, id: order.id }, ...last.recent.filter((o) => o.id !== order.id)];
      render(ctx);
    }
  } catch (err) {
    const text = `Refused (${err.status ?? "error"}): ${err.message}`;
    if (status) status.textContent = text;
    ctx.error(`${action} ${order.id}: ${text}`);
    return;
  }
  await refresh(ctx);
}

function checksTable(decision) {
  const checks = decision?.checks || [];
  return table("The risk gate's checks (margin = share of the limit still free)", [
    { label: "Check", get: (c) => c.name.replaceAll("_", " ") },
    { label: "Result", get: (c) => el("span", { class: c.passed ? "good" : "bad", text: c.passed ? "passed" : "failed" }) },
    { label: "Margin", num: true, get: (c) => c.margin === null ? "–" : pct(c.margin, 1) },
    { label: "Detail", get: (c) => c.detail ?? "" },
  ], checks);
}

function proposalCard(ctx, o) {
  const r = o.request, d = o.decision || {};
  const own = ctx.me.four_eyes && o.requester === ctx.me.actor;
  const title = `${r.side.toUpperCase()} ${qty(o.proposed_qty ?? r.qty)} ${r.symbol} ${r.type}` +
    `${r.limit_price ? ` @ ${fmt(r.limit_price)}` : ""}`;
  return el("article", { class: "proposal", id: `proposal-${o.id}`, "aria-labelledby": `t-${o.id}` },
    el("h3", { id: `t-${o.id}`, text: title }),
    el("p", { class: "muted", text: `id ${o.id} · proposed by ${o.requester} via ${o.source} at ` +
      `${time(o.created_ms)} · expires ${time(o.expires_ms)}` }),
    el("p", {}, `Notional ${fmt(d.notional)} · `, el("strong", { text: o.headroom || "" }),
      r.stop_loss ? ` · stop-loss ${fmt(r.stop_loss)}` : "", r.take_profit ? ` · take-profit ${fmt(r.take_profit)}` : "",
      r.trailing_stop_pct ? ` · trailing ${pct(r.trailing_stop_pct)}` : ""),
    el("h4", { text: "Reasoning" }),
    el("p", { class: "reasoning", text: r.note || "(no reasoning given)" }),
    checksTable(d),
    el("div", { class: "row" },
      el("button", { type: "button", class: "ok", "data-action": "approve", disabled: own,
        "aria-describedby": `status-${o.id}`, onclick: () => decide(ctx, o, "approve") }, `Approve ${o.id}`),
      el("button", { type: "button", class: "danger", "data-action": "reject",
        onclick: () => decide(ctx, o, "reject") }, `Reject ${o.id}`),
      el("span", { id: `status-${o.id}`, role: "status", class: "muted",
        text: own ? "Four-eyes: you proposed this, another approver must decide." : "" })));
}

export async function refresh(ctx) {
  if (!nodes) return;
  const seen = decisions;
  const [pending, recent] = await Promise.all([
    api("v1/orders?state=pending_approval&limit=100"), api("v1/orders?limit=30"),
  ]);
  // orders decided from this page are followed until they are done (filled, rejected, ...)
  await Promise.all([...watched].filter(([, o]) => !o || !TERMINAL.has(o.state)).map(([id]) =>
    api(`v1/orders/${encodeURIComponent(id)}`).then((o) => watched.set(id, o), () => {})));
  if (!nodes || seen !== decisions) return;
  last = { pending: pending.orders, recent: recent.orders };
  render(ctx);
}

function render(ctx) {
  ctx.setPending(last.pending.length);
  // keep a card whose buttons have focus, so a keyboard user does not lose their place
  const focused = document.activeElement?.closest?.(".proposal")?.id;
  const cards = last.pending.map((o) => proposalCard(ctx, o));
  if (focused) {
    const keep = document.getElementById(focused);
    const i = cards.findIndex((c) => c.id === focused);
    if (keep && i >= 0) cards[i] = keep;
  }
  replace(nodes.pending, cards.length ? cards : el("p", { class: "muted", text: "No proposal waits for approval." }));
  const decided = last.recent.filter((o) => o.state !== "pending_approval")
    .map((o) => (watched.has(o.id) ? { ...o, ...watched.get(o.id) } : o));
  replace(nodes.recent, table("Latest orders out of approval, newest first", [
    { label: "Id", get: (o) => o.id },
    { label: "State", get: (o) => badge(o.state) },
    { label: "Side", get: (o) => o.request.side },
    { label: "Symbol", get: (o) => o.request.symbol },
    { label: "Qty", num: true, get: (o) => qty(o.proposed_qty ?? o.request.qty) },
    { label: "Filled", num: true, get: (o) => qty(o.filled_qty) },
    { label: "Avg price", num: true, get: (o) => fmt(o.avg_price) },
    { label: "Requester", get: (o) => o.requester },
    { label: "Decided by", get: (o) => o.approved_by ?? o.rejected_by ?? "–" },
    { label: "Updated", get: (o) => time(o.updated_ms) },
  ], decided.map((o) => ({ ...o, __attrs: { "data-order": o.id, "data-state": o.state } }))));
}
