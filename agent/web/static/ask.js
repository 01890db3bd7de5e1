// Ask: a chat with the desk over /v1/ask as server-sent events (tokens and tool calls as they happen). The
// conversation id stays in this tab's session storage, so the desk keeps the context and a reload restores it.
import { api, ApiError, sse } from "./api.js";
import { el, replace } from "./util.js";

const SESSION = "cqa.session";
let nodes = null, controller = null;

function sessionId() {
  let id = sessionStorage.getItem(SESSION);
  if (!id) {
    id = `web-${crypto.randomUUID().replaceAll("-", "")}`;
    sessionStorage.setItem(SESSION, id);
  }
  return id;
}

function userMsg(text) { return el("div", { class: "msg user" }, el("span", { class: "sr-only", text: "You: " }), text); }

function deskMsg() {
  const tools = el("ul", { class: "tools", "aria-label": "Tool calls" });
  const text = el("div", { class: "answer-text" });
  const meta = el("div", { class: "muted" });
  const box = el("div", { class: "msg desk", "aria-busy": "true" }, tools, text, meta);
  return { box, tools, text, meta };
}

function toolLine(name, args) {
  return el("li", { "data-tool": name }, `⋯ ${name}(${args ? JSON.stringify(args).slice(0, 120) : ""})`);
}

export function mount(root, ctx) {
  const log = el("div", { id: "chat", class: "chat", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
  const question = el("textarea", { id: "question", name: "question", required: true, maxlength: 4000,
    placeholder: "e.g. How is BTC/USDT doing, and what is our risk?" });
  const deep = el("input", { id: "deep", type: "checkbox" });
  const send = el("button", { type: "submit", id: "send" }, "Send");
  const form = el("form", { id: "ask-form" },
    el("label", { for: "question", text: "Question (Ctrl+Enter sends)" }), question,
    el("div", { class: "row" }, send, el("label", {}, deep, " Deeper analysis"),
      el("button", { type: "button", class: "ghost", onclick: () => {
        sessionStorage.removeItem(SESSION);
        replace(log);
        ctx.toast("New conversation");
      } }, "New conversation")));
  nodes = { log, question, send };
  question.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); form.requestSubmit(); }
  });
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = question.value.trim();
    if (q) ask(ctx, q, deep.checked);
  });
  replace(root, el("h1", { text: "Ask the desk" }),
    el("section", { class: "card", "aria-labelledby": "h-chat" },
      el("h2", { id: "h-chat", text: "Conversation" }), log, form));
  restore(ctx);
}

export function unmount() { controller?.abort(); controller = null; nodes = null; }

async function restore(ctx) {
  const id = sessionStorage.getItem(SESSION);
  if (!id) return;
  try {
    const conv = await api(`v1/conversations/${encodeURIComponent(id)}`);
    if (!nodes) return;
    for (const t of conv.turns) {
      const m = deskMsg();
      m.box.removeAttribute("aria-busy");
      m.text.textContent = t.answer;
      nodes.log.append(userMsg(t.question), m.box);
    }
    nodes.log.scrollTop = nodes.log.scrollHeight;
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) ctx.error(`conversation not restored: ${err.message}`);
  }
}

async function ask(ctx, q, deep) {
  const { log, question, send } = nodes;
  question.value = "";
  send.disabled = true;
  const m = deskMsg();
  log.append(userMsg(q), m.box);
  const lines = new Map();
  let streamed = "";
  controller = new AbortController();
  try {
    await sse("v1/ask", { question: q, session_id: sessionId(), stream: true, deep }, (type, data) => {
      if (type === "token") {
        streamed += data.text || "";
        m.text.textContent = streamed;
      } else if (type === "tool_started") {
        const li = toolLine(data.tool, data.args);
        lines.set(data.tool, li);
        m.tools.append(li);
      } else if (type === "tool_finished") {
        const li = lines.get(data.tool) || m.tools.appendChild(toolLine(data.tool));
        li.textContent = `${data.ok ? "✓" : "✗"} ${data.tool} · ${data.ms ?? "?"} ms`;
        li.className = data.ok ? "" : "bad";
      } else if (type === "answer") {
        const a = data.answer || {};
        if (!streamed) m.text.textContent = a.answer || "";
        if (!lines.size) {
          for (const t of a.tools_used || []) {
            m.tools.append(el("li", { "data-tool": t.tool, class: t.ok ? "" : "bad",
              text: `${t.ok ? "✓" : "✗"} ${t.tool}(${JSON.stringify(t.args).slice(0, 120)})` }));
          }
        }
        m.meta.textContent = `${a.mode === "llm" ? "language model" : "deterministic analysis"}` +
          `${(a.proposals || []).length ? ` · ${a.proposals.length} proposal(s): see Approvals` : ""}`;
        if (a.session_id) sessionStorage.setItem(SESSION, a.session_id);
      } else if (type === "error") {
        m.meta.textContent = "";
        m.text.append(el("p", { class: "bad", text: data.error || "the desk could not answer" }));
      }
      log.scrollTop = log.scrollHeight;
    }, controller.signal);
  } catch (err) {
    if (err.name !== "AbortError") m.text.append(el("p", { class: "bad", text: `Refused: ${err.message}` }));
  } finally {
    m.box.removeAttribute("aria-busy");
    m.box.classList.add("done");
    if (nodes) { send.disabled = false; question.focus(); }
  }
}
