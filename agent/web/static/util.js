// Small DOM helpers: elements are built with createElement and textContent (no HTML strings from data).
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function fmt(x, digits = 2) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  if (typeof x !== "number") return String(x);
  return x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function qty(x) {
  if (x === null || x === undefined) return "–";
  return Number(x).toLocaleString("en-US", { maximumFractionDigits: 8 });
}

export const pct = (x, digits = 2) => (x === null || x === undefined ? "–" : `${fmt(x * 100, digits)}%`);

export function time(ms) {
  if (!ms) return "–";
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19) + "Z";
}

export const badge = (state) => el("span", { class: `badge ${state}`, text: String(state).replaceAll("_", " ") });

// A table from column specs [{label, get(row), num?}], with a caption for screen readers.
export function table(caption, columns, rows, empty = "none") {
  const t = el("table", {}, el("caption", { text: caption }));
  t.append(el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col", class: c.num ? "num" : null,
    text: c.label })))));
  const body = el("tbody");
  if (!rows.length) body.append(el("tr", {}, el("td", { colspan: columns.length, class: "muted", text: empty })));
  for (const r of rows) {
    body.append(el("tr", r.__attrs || {}, columns.map((c) => {
      const v = c.get(r);
      return el("td", { class: c.num ? "num" : null }, v instanceof Node ? v : String(v ?? "–"));
    })));
  }
  t.append(body);
  return t;
}

export function kpi(label, value, cls) {
  return el("div", { class: "kpi" }, el("span", { text: label }), el("span", { class: cls, text: value }));
}

export function replace(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}
