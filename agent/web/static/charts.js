// Charts drawn as inline SVG: lines, a shaded interval band, candles and markers on one plot, and a heat map.
// Each chart is an <svg role="img"> with a title and a one-line description for screen readers.
const NS = "http://www.w3.org/2000/svg";
let uid = 0;

function s(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function extent(values) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) if (Number.isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
  if (lo === Infinity) return [0, 1];
  if (lo === hi) { const pad = Math.abs(lo) * 0.01 || 1; return [lo - pad, hi + pad]; }
  const pad = (hi - lo) * 0.05;
  return [lo - pad, hi + pad];
}

const shortNum = (v) => {
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  if (a >= 100) return v.toFixed(0);
  return v.toPrecision(3);
};
// Axis labels with as many decimals as the span needs (an equity of 100,000 moving by 2 needs two).
const axisLabel = (span) => {
  const digits = Math.max(0, Math.min(6, Math.ceil(-Math.log10((span || 1) / 4)) + 1));
  return (v) => (Math.abs(v) >= 1e6 && digits === 0 ? shortNum(v) :
    v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }));
};
export const timeLabel = (ms) => new Date(ms).toISOString().slice(5, 16).replace("T", " ");
// Time labels as fine as the span needs: seconds within minutes, minutes within days, else month-day hour.
const timeLabelFor = (span) => (ms) => {
  const iso = new Date(ms).toISOString();
  if (span < 6e5) return iso.slice(11, 19);
  if (span < 864e5) return iso.slice(11, 16);
  return timeLabel(ms);
};

// spec: {title, desc, width, height, series:[{name,color,points:[[x,y]],dash}], band:{color,points:[[x,lo,hi]]},
//        candles:[[x,o,h,l,c]], markers:[{x,y,kind:'up'|'down',color,label}], xLabel(x), yLabel(y)}
export function plot(spec) {
  const W = spec.width || 720, H = spec.height || 260, R = 12, T = 12, B = 26;
  const id = `c${++uid}`;
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": `${id}t ${id}d` });
  svg.append(s("title", { id: `${id}t` }, spec.title || "chart"), s("desc", { id: `${id}d` }, spec.desc || ""));
  const xs = [], ys = [];
  for (const ser of spec.series || []) for (const [x, y] of ser.points) { xs.push(x); ys.push(y); }
  for (const [x, lo, hi] of spec.band?.points || []) { xs.push(x); ys.push(lo, hi); }
  for (const [x, , h, l] of spec.candles || []) { xs.push(x); ys.push(h, l); }
  for (const m of spec.markers || []) { xs.push(m.x); ys.push(m.y); }
  const [x0, x1] = xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1];
  const [y0, y1] = extent(ys);
  const xl = spec.xLabel || timeLabelFor(x1 - x0), yl = spec.yLabel || axisLabel(y1 - y0);
  const yTicks = [0, 1, 2, 3, 4].map((i) => y0 + ((y1 - y0) * i) / 4);
  const L = Math.max(40, 10 + 6.5 * Math.max(...yTicks.map((y) => yl(y).length)));  // room for the longest label
  const sx = (x) => L + ((x - x0) / ((x1 - x0) || 1)) * (W - L - R);
  const sy = (y) => T + (1 - (y - y0) / ((y1 - y0) || 1)) * (H - T - B);
  const grid = s("g", { stroke: "#2b3540", "stroke-width": 1 });
  for (let i = 0; i <= 4; i++) {
    const y = y0 + ((y1 - y0) * i) / 4;
    grid.append(s("line", { x1: L, x2: W - R, y1: sy(y), y2: sy(y) }));
    svg.append(s("text", { x: L - 6, y: sy(y) + 4, "text-anchor": "end" }, yl(y)));
  }
  if (xs.length) {
    for (let i = 0; i <= 3; i++) {
      const x = x0 + ((x1 - x0) * i) / 3;
      svg.append(s("text", { x: sx(x), y: H - 8, "text-anchor": i === 0 ? "start" : i === 3 ? "end" : "middle" },
        xl(x)));
    }
  }
  svg.prepend(grid);
  if (spec.band?.points?.length) {
    const pts = spec.band.points;
    const d = pts.map(([x, , hi], i) => `${i ? "L" : "M"}${sx(x).toFixed(1)},${sy(hi).toFixed(1)}`).join("") +
      pts.slice().reverse().map(([x, lo]) => `L${sx(x).toFixed(1)},${sy(lo).toFixed(1)}`).join("") + "Z";
    svg.append(s("path", { d, fill: spec.band.color || "#6cb6ff", "fill-opacity": 0.18, stroke: "none" }));
  }
  const candles = spec.candles || [];
  if (candles.length) {
    const w = Math.max(1, Math.min(10, ((W - L - R) / candles.length) * 0.6));
    const g = s("g", { class: "candles" });
    for (const [x, o, h, l, c] of candles) {
      const color = c >= o ? "#4cc38a" : "#ff8a80";
      g.append(s("line", { x1: sx(x), x2: sx(x), y1: sy(h), y2: sy(l), stroke: color }));
      const top = sy(Math.max(o, c)), bot = sy(Math.min(o, c));
      g.append(s("rect", { x: sx(x) - w / 2, y: top, width: w, height: Math.max(1, bot - top), fill: color }));
    }
    svg.append(g);
  }
  for (const ser of spec.series || []) {
    if (!ser.points.length) continue;
    const d = ser.points.map(([x, y], i) => `${i ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join("");
    svg.append(s("path", { d, fill: "none", stroke: ser.color, "stroke-width": ser.width || 2,
      "stroke-dasharray": ser.dash || null, "data-series": ser.name }));
    if (ser.points.length === 1) {
      const [x, y] = ser.points[0];
      svg.append(s("circle", { cx: sx(x), cy: sy(y), r: 3, fill: ser.color }));
    }
  }
  for (const m of spec.markers || []) {
    const x = sx(m.x), y = sy(m.y), up = m.kind === "up";
    const d = up ? `M${x},${y - 2}l-6,10h12z` : `M${x},${y + 2}l-6,-10h12z`;
    const p = s("path", { d, fill: m.color || (up ? "#4cc38a" : "#ff8a80"), class: `marker ${m.kind}` });
    if (m.label) p.append(s("title", {}, m.label));
    svg.append(p);
  }
  return svg;
}

// A colour from a value in [0, 1]: dark blue (low) to yellow (high).
export function ramp(t) {
  const u = Math.max(0, Math.min(1, t));
  const r = Math.round(30 + 225 * u), g = Math.round(60 + 160 * u), b = Math.round(140 - 100 * u);
  return `rgb(${r},${g},${b})`;
}

// spec: {title, desc, rows:[label], cols:[label], values:[[v]], format(v)}
export function heatmap(spec) {
  const rows = spec.rows, cols = spec.cols, W = spec.width || 720, L = 70, T = 8, B = 26, R = 76;
  const ch = 26, H = T + B + rows.length * ch;
  const id = `c${++uid}`;
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": `${id}t ${id}d` });
  svg.append(s("title", { id: `${id}t` }, spec.title), s("desc", { id: `${id}d` }, spec.desc || ""));
  const [lo, hi] = extent(spec.values.flat());
  const cw = (W - L - R) / Math.max(1, cols.length);
  rows.forEach((label, r) => {
    svg.append(s("text", { x: L - 6, y: T + r * ch + ch / 2 + 4, "text-anchor": "end" }, label));
    spec.values[r].forEach((v, c) => {
      const cell = s("rect", { x: L + c * cw, y: T + r * ch, width: cw + 0.5, height: ch - 1,
        fill: Number.isFinite(v) ? ramp((v - lo) / (hi - lo || 1)) : "#222" });
      cell.append(s("title", {}, `${label}, ${cols[c]}: ${spec.format ? spec.format(v) : v}`));
      svg.append(cell);
    });
  });
  const step = Math.max(1, Math.ceil(cols.length / 6));
  cols.forEach((label, c) => {
    if (c % step === 0) svg.append(s("text", { x: L + c * cw + cw / 2, y: H - 8, "text-anchor": "middle" }, label));
  });
  for (let i = 0; i <= 4; i++) {
    const v = lo + ((hi - lo) * i) / 4, y = T + (1 - i / 4) * (rows.length * ch - 12);
    svg.append(s("rect", { x: W - R + 8, y, width: 12, height: 12, fill: ramp(i / 4) }));
    svg.append(s("text", { x: W - R + 24, y: y + 10 }, spec.format ? spec.format(v) : shortNum(v)));
  }
  return svg;
}

export function legend(items) {
  const box = document.createElement("div");
  box.className = "legend";
  for (const [name, color] of items) {
    const item = document.createElement("span");
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = color;
    item.append(sw, name);
    box.append(item);
  }
  return box;
}
