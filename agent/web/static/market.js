// Market: candles with the latest forecast and its interval; news sentiment, events and search; the volatility
// smile and surface of a chain you choose (fitted by /v1/options/surface); a backtest with its equity and trades.
import { api } from "./api.js";
import { heatmap, legend, plot, timeLabel } from "./charts.js";
import { el, fmt, pct, replace, table } from "./util.js";

const TF_MS = { "15m": 9e5, "1h": 36e5, "4h": 144e5, "1d": 864e5 };
const STRATEGIES = ["sma_crossover", "ma_crossover", "momentum", "ts_momentum", "breakout",
  "donchian", "bollinger", "mean_reversion", "rsi", "zscore", "trend"];
let nodes = null;

function field(label, control) {
  return el("div", { class: "field" }, el("label", { for: control.id, text: label }), control);
}
function select(id, values, value) {
  return el("select", { id }, values.map((v) => el("option", { value: v, selected: v === value }, v)));
}

export function mount(root, ctx) {
  const symbols = ctx.me.symbols;
  const symbol = select("m-symbol", symbols, symbols[0]);
  const tf = select("m-timeframe", Object.keys(TF_MS), "1h");
  nodes = { symbol, tf, chart: el("div", { id: "m-chart" }), forecast: el("div", { id: "m-forecast" }),
    news: el("div", { id: "m-news" }), hits: el("div", { id: "m-hits" }), surface: el("div", { id: "m-surface" }),
    backtest: el("div", { id: "m-backtest" }) };
  const load = () => { loadChart(ctx); loadNews(ctx); };
  symbol.addEventListener("change", load);
  tf.addEventListener("change", () => loadChart(ctx));

  const q = el("input", { id: "m-q", type: "search", minlength: 2, maxlength: 300, required: true,
    placeholder: "ETF flows, hack, listing…" });
  const newsForm = el("form", { class: "row", onsubmit: (ev) => { ev.preventDefault(); searchNews(ctx, q.value); } },
    field("Search the news", q), el("button", { type: "submit" }, "Search"));

  const file = el("input", { id: "m-chain", type: "file", accept: ".csv,text/csv" });
  const surfaceForm = el("form", { class: "row", onsubmit: (ev) => { ev.preventDefault(); fitSurface(ctx, file); } },
    field("Option chain (CSV, flat Deribit format)", file), el("button", { type: "submit", id: "m-fit" }, "Fit surface"));

  const bt = {
    strategy: select("bt-strategy", STRATEGIES, "sma_crossover"),
    symbol: select("bt-symbol", symbols, symbols[0]),
    timeframe: select("bt-timeframe", Object.keys(TF_MS), "1h"),
    limit: el("input", { id: "bt-limit", type: "number", min: 50, max: 20000, value: 1000 }),
    cash: el("input", { id: "bt-cash", type: "number", min: 1, step: "any", value: 10000 }),
    fee: el("input", { id: "bt-fee", type: "number", min: 0, max: 0.05, step: "any", value: 0.001 }),
  };
  const btForm = el("form", { class: "row", onsubmit: (ev) => { ev.preventDefault(); runBacktest(ctx, bt); } },
    field("Strategy", bt.strategy), field("Symbol", bt.symbol), field("Timeframe", bt.timeframe),
    field("Bars", bt.limit), field("Initial cash", bt.cash), field("Fee", bt.fee),
    el("button", { type: "submit", id: "bt-run" }, "Run backtest"));

  replace(root, el("h1", { text: "Market" }),
    el("div", { class: "row" }, field("Symbol", symbol), field("Timeframe", tf),
      el("button", { type: "button", class: "ghost", onclick: load }, "Reload"),
      el("button", { type: "button", onclick: () => forecastNow(ctx) }, "Forecast now")),
    el("div", { class: "grid" },
      el("section", { class: "card wide", "aria-labelledby": "h-candles" },
        el("h2", { id: "h-candles", text: "Candles and forecast" }), nodes.chart, nodes.forecast),
      el("section", { class: "card wide", "aria-labelledby": "h-news" },
        el("h2", { id: "h-news", text: "News: sentiment and events" }), nodes.news, newsForm, nodes.hits),
      el("section", { class: "card wide", "aria-labelledby": "h-vol" },
        el("h2", { id: "h-vol", text: "Volatility smile and surface" }), surfaceForm, nodes.surface),
      el("section", { class: "card wide", "aria-labelledby": "h-bt" },
        el("h2", { id: "h-bt", text: "Backtest" }), btForm, nodes.backtest)));
  load();
}

export function unmount() { nodes = null; }

const isoMs = (t) => (typeof t === "number" ? t : Date.parse(t));

function drawChart(candles, fc, sym, tfName) {
  const rows = candles.candles.map((c) => [isoMs(c[0]), c[1], c[2], c[3], c[4]]);
  const spec = { title: `${sym} ${tfName} candles`, desc: `${rows.length} candles from ${candles.from} to ` +
    `${candles.to}${fc ? `, with a ${fc.horizon}-step forecast and its ${pct(fc.interval?.level ?? fc.interval, 0)} interval` : ""}`,
    candles: rows, series: [], height: 300 };
  if (fc && rows.length) {
    const t0 = Date.parse(fc.as_of) || rows[rows.length - 1][0];
    const step = TF_MS[tfName] || 36e5;
    const pts = fc.path.map(([s, p, lo, hi]) => [t0 + s * step, p, lo, hi]);
    spec.series.push({ name: "forecast", color: "#6cb6ff", dash: "5 3", points: [[t0, fc.last_close],
      ...pts.map(([x, p]) => [x, p])] });
    spec.band = { color: "#6cb6ff", points: [[t0, fc.last_close, fc.last_close], ...pts.map(([x, , lo, hi]) =>
      [x, lo, hi])] };
  }
  return [plot(spec), legend([["up candle", "#4cc38a"], ["down candle", "#ff8a80"], ["forecast", "#6cb6ff"],
    ["interval", "rgba(108,182,255,.3)"]])];
}

function forecastText(fc) {
  if (!fc) return el("p", { class: "muted", text: "No stored forecast for this symbol and timeframe: press " +
    "Forecast now (it needs a trained model: crypto-agent train)." });
  return el("p", {}, `Forecast from ${fc.as_of}${fc.stale ? " (stale)" : ""}: ${fc.horizon} steps to ` +
    `${fmt(fc.final?.price)} (${fmt(fc.final?.return_pct)}%), interval ${fmt(fc.final?.lower)}–` +
    `${fmt(fc.final?.upper)}. ${fc.verdict ?? ""}`);
}

async function loadChart(ctx, fc) {
  if (!nodes) return;
  const sym = nodes.symbol.value, tfName = nodes.tf.value;
  const draw = (candles, forecast, note) => {
    if (!nodes || nodes.symbol.value !== sym || nodes.tf.value !== tfName) return;
    replace(nodes.chart, drawChart(candles, forecast, sym, tfName));
    replace(nodes.forecast, note ?? forecastText(forecast),
      el("p", { class: "muted", text: `Source: ${candles.exchange}${candles.simulated ? " (simulated)" : ""}` }));
  };
  let candles;
  try {
    candles = await api(`v1/market/candles?symbol=${encodeURIComponent(sym)}&timeframe=${tfName}&limit=120`);
  } catch (err) { ctx.error(`candles: ${err.message}`); return; }
  if (fc) { draw(candles, fc); return; }
  // candles first; the stored forecast is drawn over them when it arrives
  draw(candles, null, el("p", { class: "muted", text: "Looking for a stored forecast…" }));
  let forecast = null;
  try {
    const preds = await api(`predictions?timeframe=${tfName}`);
    forecast = preds.predictions?.[sym] || null;
  } catch (err) {
    draw(candles, null, el("p", { class: "bad", text: `Forecasts unavailable: ${err.message}` }));
    return;
  }
  draw(candles, forecast);
}

async function forecastNow(ctx) {
  const sym = nodes.symbol.value, tfName = nodes.tf.value;
  replace(nodes.forecast, el("p", { class: "muted", text: "Forecasting…" }));
  try {
    const fc = await api("v1/forecasts", { method: "POST", body: { symbol: sym, timeframe: tfName } });
    await loadChart(ctx, fc);
  } catch (err) {
    if (nodes) replace(nodes.forecast, el("p", { class: "bad", text: `Forecast refused: ${err.message}` }));
  }
}

async function loadNews(ctx) {
  const coin = nodes.symbol.value.split("/")[0];
  try {
    const [sent, ev] = await Promise.all([
      api(`v1/news/sentiment?symbols=${coin}`), api(`v1/news/events?symbols=${coin}&limit=10`)]);
    if (!nodes) return;
    replace(nodes.news,
      table(`Sentiment index for ${coin} (decayed, last 7 days)`, [
        { label: "Coin", get: (s) => s.symbol },
        { label: "Index", num: true, get: (s) => fmt(s.index, 3) },
        { label: "Signal", num: true, get: (s) => fmt(s.signal, 3) },
        { label: "Docs", num: true, get: (s) => s.n_docs },
        { label: "+ / − / =", get: (s) => `${s.positive} / ${s.negative} / ${s.neutral}` },
        { label: "Events", get: (s) => Object.entries(s.events || {}).map(([k, n]) => `${k} ${n}`).join(", ") || "–" },
      ], sent.symbols),
      table(`Events for ${coin} (last 72 h)`, [
        { label: "Published", get: (e) => e.published },
        { label: "Events", get: (e) => e.events.join(", ") },
        { label: "Title", get: (e) => e.title },
        { label: "Sentiment", num: true, get: (e) => fmt(e.sentiment, 2) },
      ], ev.events, "no events"));
  } catch (err) {
    if (nodes) replace(nodes.news, el("p", { class: "bad", text: `News unavailable: ${err.message}` }));
  }
}

async function searchNews(ctx, q) {
  const coin = nodes.symbol.value.split("/")[0];
  try {
    const out = await api(`v1/news/search?q=${encodeURIComponent(q)}&symbols=${coin}&k=10`);
    if (!nodes) return;
    replace(nodes.hits, table(`${out.count} result(s) for “${q}”`, [
      { label: "Published", get: (h) => h.published },
      { label: "Title", get: (h) => h.title },
      { label: "Source", get: (h) => h.source },
      { label: "Sentiment", num: true, get: (h) => fmt(typeof h.sentiment === "number" ? h.sentiment :
        h.sentiment?.score, 2) },
      { label: "Events", get: (h) => (h.events || []).join(", ") },
    ], out.results, "no match"));
  } catch (err) { if (nodes) replace(nodes.hits, el("p", { class: "bad", text: `Search refused: ${err.message}` })); }
}

// The chain's quotes, read here only to draw them next to the fitted smile.
function parseChain(text) {
  const lines = text.trim().split(/\r?\n/);
  const head = lines[0].split(",").map((h) => h.trim());
  const col = (n) => head.indexOf(n);
  const [iS, iE, iU, iM, iT] = ["strike", "expiry_ts_ms", "underlying_price", "mark_iv", "snapshot_ts_ms"].map(col);
  const quotes = [];
  for (const line of lines.slice(1)) {
    const c = line.split(",");
    const strike = +c[iS], days = (+c[iE] - +c[iT]) / 864e5, fwd = +c[iU], iv = +c[iM];
    if ([strike, days, fwd, iv].every(Number.isFinite)) quotes.push({ strike, days, fwd, iv });
  }
  return quotes;
}

const PALETTE = ["#6cb6ff", "#4cc38a", "#f5c451", "#ff8a80", "#c49bff", "#7ee0e6", "#ffb870", "#e6e9ef"];

async function fitSurface(ctx, input) {
  const f = input.files?.[0];
  if (!f) { replace(nodes.surface, el("p", { class: "bad", text: "Choose a chain CSV file first." })); return; }
  const text = await f.text();
  replace(nodes.surface, el("p", { class: "muted", text: "Fitting…" }));
  try {
    const fit = await api("v1/options/surface", { method: "POST", body: { chain_csv_text: text } });
    const exps = fit.expiries.slice(0, 8);
    const ks = Array.from({ length: 25 }, (_, i) => -0.6 + (1.2 * i) / 24); // log-moneyness grid
    const queries = exps.flatMap((e) => ks.map((k) => ({ strike: e.forward * Math.exp(k), expiry_days: e.days })));
    const grid = await api("v1/options/surface", { method: "POST", body: { chain_csv_text: text, queries } });
    if (!nodes) return;
    const vols = exps.map((_, r) => ks.map((_, c) => grid.queries[r * ks.length + c].implied_vol_pct));
    const quotes = parseChain(text);
    const series = exps.map((e, r) => ({ name: e.expiry, color: PALETTE[r % PALETTE.length], width: 1.5,
      points: ks.map((k, c) => [k, vols[r][c]]) }));
    const markers = quotes.filter((q) => exps.some((e) => Math.abs(e.days - q.days) < 0.01)).map((q) => {
      const r = exps.findIndex((e) => Math.abs(e.days - q.days) < 0.01);
      return { x: Math.log(q.strike / exps[r].forward), y: q.iv, kind: "up", color: PALETTE[r % PALETTE.length],
        label: `${exps[r].expiry} strike ${q.strike}: mark ${fmt(q.iv)}%` };
    }).filter((m) => m.x >= -0.6 && m.x <= 0.6);
    replace(nodes.surface,
      el("p", {}, `Fit: ${fit.n_expiries} expiries, RMSE ${fmt(fit.rmse_vol_pts, 2)} vol pts, ` +
        `${pct(fit.within_spread_frac, 1)} within bid/ask, ` +
        `${fit.arbitrage_free ? "arbitrage-free" : "arbitrage found"}.`),
      plot({ title: "Volatility smile per expiry", desc: `Fitted implied vol (%) against log-moneyness for ` +
        `${exps.length} expiries; triangles are the chain's mark IVs`, series, markers, height: 260,
        xLabel: (x) => x.toFixed(2), yLabel: (y) => `${y.toFixed(0)}%` }),
      legend(series.map((s) => [s.name, s.color])),
      heatmap({ title: "Implied volatility surface", desc: "Implied vol (%) by expiry (rows) and log-moneyness " +
        "(columns)", rows: exps.map((e) => `${fmt(e.days, 0)}d`), cols: ks.map((k) => k.toFixed(2)), values: vols,
        format: (v) => `${fmt(v, 1)}%` }),
      table("Expiries", [
        { label: "Expiry", get: (e) => e.expiry },
        { label: "Days", num: true, get: (e) => fmt(e.days, 1) },
        { label: "Forward", num: true, get: (e) => fmt(e.forward) },
        { label: "ATM vol", num: true, get: (e) => `${fmt(e.atm_vol_pct, 1)}%` },
        { label: "RMSE", num: true, get: (e) => fmt(e.rmse_vol_pts, 2) },
      ], fit.expiries));
  } catch (err) { if (nodes) replace(nodes.surface, el("p", { class: "bad", text: `Fit refused: ${err.message}` })); }
}

async function runBacktest(ctx, bt) {
  replace(nodes.backtest, el("p", { class: "muted", text: "Running…" }));
  const body = { strategy: bt.strategy.value, symbols: [bt.symbol.value], timeframe: bt.timeframe.value,
    limit: +bt.limit.value, initial_cash: +bt.cash.value, fee: +bt.fee.value, include_equity: true };
  try {
    const out = await api("v1/backtests", { method: "POST", body });
    if (!nodes) return;
    const curve = out.equity_curve || [];
    const at = (ms) => {
      let best = curve[0];
      for (const p of curve) { if (p[0] <= ms) best = p; else break; }
      return best ? best[1] : null;
    };
    const markers = [];
    for (const t of out.trades || []) {
      const long = t.side !== "short";
      if (t.entry_ms) markers.push({ x: t.entry_ms, y: at(t.entry_ms), kind: long ? "up" : "down",
        label: `${t.side} entry ${timeLabel(t.entry_ms)} at ${fmt(t.entry_price)}` });
      if (t.exit_ms) markers.push({ x: t.exit_ms, y: at(t.exit_ms), kind: long ? "down" : "up",
        label: `exit ${timeLabel(t.exit_ms)} at ${fmt(t.exit_price)}: PnL ${fmt(t.pnl)}` });
    }
    const m = out.metrics, b = out.buy_and_hold;
    replace(nodes.backtest,
      plot({ title: `${out.strategy.name} on ${out.symbols.join(", ")}: equity`, desc: `Equity of the strategy ` +
        `and of buy-and-hold over ${out.bars} bars; ${out.trades.length} trades marked`, height: 260,
        series: [{ name: "strategy", color: "#6cb6ff", points: curve.map((p) => [p[0], p[1]]) },
          { name: "buy and hold", color: "#a9b4c2", dash: "4 3", width: 1.5,
            points: curve.filter((p) => p[2] !== null).map((p) => [p[0], p[2]]) }],
        markers: markers.filter((mk) => mk.y !== null) }),
      legend([["strategy", "#6cb6ff"], ["buy and hold", "#a9b4c2"], ["entry", "#4cc38a"], ["exit", "#ff8a80"]]),
      table("Strategy against buy-and-hold", [
        { label: "", get: (r) => r[0] },
        { label: "Total return", num: true, get: (r) => pct(r[1].total_return) },
        { label: "Sharpe", num: true, get: (r) => fmt(r[1].sharpe) },
        { label: "Max drawdown", num: true, get: (r) => pct(r[1].max_drawdown) },
        { label: "Final equity", num: true, get: (r) => fmt(r[1].final_equity) },
        { label: "Trades", num: true, get: (r) => r[1].trades ?? "–" },
      ], [["strategy", m], ["buy and hold", b]]),
      el("p", { class: "muted", text: (out.data || []).join("; ") }));
  } catch (err) { if (nodes) replace(nodes.backtest, el("p", { class: "bad", text: `Backtest refused: ${err.message}` })); }
}
