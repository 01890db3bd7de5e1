// The web desk: sign-in, page routing (#/desk, #/approvals, #/ask, #/market) and the polling loop.
import { api, ApiError, clearKey, getKey, setKey } from "./api.js";
import { el, replace } from "./util.js";
import * as desk from "./desk.js";
import * as approvals from "./approvals.js";
import * as ask from "./ask.js";
import * as market from "./market.js";

const PAGES = { desk, approvals, ask, market };
const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);

const ctx = {
  me: null,
  toast(text) {
    const t = $("toast");
    t.textContent = text;
    clearTimeout(ctx._toastTimer);
    ctx._toastTimer = setTimeout(() => { t.textContent = ""; }, 6000);
  },
  error(text) { $("page-error").textContent = text || ""; },
  // Ask for confirmation in a modal dialog; resolves to the typed reason, or null when cancelled.
  confirm(title, text, okLabel) {
    const dlg = $("confirm");
    $("confirm-title").textContent = title;
    $("confirm-text").textContent = text;
    $("confirm-ok").textContent = okLabel || "Confirm";
    $("confirm-reason").value = "";
    return new Promise((resolve) => {
      dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok" ? $("confirm-reason").value : null),
        { once: true });
      dlg.returnValue = "";
      dlg.showModal();
      $("confirm-reason").focus();
    });
  },
  setPending(n) { $("pending-count").textContent = n ? String(n) : ""; },
};

let current = null, timer = null, generation = 0;

function route() {
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1];
  return PAGES[name] ? name : "desk";
}

async function poll(gen) {
  if (gen !== generation || !current?.refresh) return;
  if (document.hidden) {  // a tab in the background does not poll; it catches up when shown
    timer = setTimeout(() => poll(gen), POLL_MS);
    return;
  }
  try {
    await current.refresh(ctx);
    ctx.error("");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return signOut("Your key was refused: sign in again.");
    ctx.error(err.message);
  }
  if (gen === generation) timer = setTimeout(() => poll(gen), current.pollMs ?? POLL_MS);
}

function show() {
  const name = route();
  generation += 1;
  clearTimeout(timer);
  current?.unmount?.();
  ctx.error("");
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `${name[0].toUpperCase()}${name.slice(1)} · Crypto Quant Agent`;
  current = PAGES[name];
  const root = $("page");
  replace(root);
  current.mount(root, ctx);
  if (current.refresh) poll(generation);
}

function signOut(message) {
  generation += 1;
  clearTimeout(timer);
  current?.unmount?.();
  current = null;
  clearKey();
  // the conversation and equity marks belong to the key that made them: a new sign-in starts afresh
  sessionStorage.clear();
  ctx.me = null;
  $("shell").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("api-key").focus();
}

async function signIn(key) {
  setKey(key);
  try {
    ctx.me = await api("v1/whoami");
  } catch (err) {
    signOut(err instanceof ApiError && err.status === 401 ? "That key was refused (invalid or revoked)." :
      `Sign-in failed: ${err.message}`);
    return;
  }
  const me = ctx.me;
  replace($("who"), el("span", { text: `${me.actor} · ${me.scopes.join(", ")} · ${me.mode}` }));
  $("login").hidden = true;
  $("shell").hidden = false;
  show();
  $("main").focus();
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const key = $("api-key").value.trim();
    $("api-key").value = "";
    if (key) signIn(key);
  });
  $("logout").addEventListener("click", () => signOut("Signed out."));
  window.addEventListener("hashchange", () => { if (ctx.me) show(); });
  const key = getKey();
  if (key) signIn(key);
  else signOut("");
});
