// The portal's common parts: the API (a session cookie, and on writes the
// CSRF token the sign-in set in a cookie), elements, the view and its
// messages, tables and forms, the signed-in user's permissions, and live
// refreshes (Server-Sent Events from /api/live, or polling).
"use strict";

// SPACE is the API's prefix of space-scoped routes; HASH the portal's.
export const SPACE = "/api/Spaces-1";
export const HASH = "#/Spaces-1";

const view = document.getElementById("view");
const message = document.getElementById("message");
const status = document.getElementById("status");

function csrf() {
  const m = document.cookie.match(/(?:^|; )Octopus-Csrf-Token=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : "";
}

// api calls the API and answers the JSON it returns; an error answer throws
// its ErrorMessage. A 401 (but a failed sign-in's) leads to the sign-in.
export async function api(method, path, body) {
  const opts = { method, credentials: "same-origin", headers: { "Accept": "application/json" } };
  if (method !== "GET") opts.headers["X-Octopus-Csrf-Token"] = csrf();
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { ErrorMessage: text };
  }
  if (resp.status === 401 && path !== "/api/users/login") {
    signedOut();
    location.hash = "#/signin";
    throw new Error("You are signed out.");
  }
  if (!resp.ok) throw new Error((data && data.ErrorMessage) || `${resp.status} ${resp.statusText}`);
  return data;
}

// upload posts a file as multipart/form-data (part "file"), calling
// progress with the fraction sent so far; it answers the JSON returned.
export function upload(path, file, progress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.setRequestHeader("X-Octopus-Csrf-Token", csrf());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (ev) => {
      if (ev.lengthComputable) progress(ev.loaded / ev.total);
    });
    xhr.addEventListener("load", () => {
      let data = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new Error((data && data.ErrorMessage) || `${xhr.status} ${xhr.statusText}`));
    });
    xhr.addEventListener("error", () => reject(new Error("The upload failed: the server could not be reached.")));
    const body = new FormData();
    body.append("file", file, file.name);
    xhr.send(body);
  });
}

// el makes an element: attributes (on... ones are listeners; true sets an
// empty attribute, false and null none) and children (null and false
// skipped, arrays flattened).
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, "");
    else if (v !== false && v != null) e.setAttribute(k, v);
  }
  e.append(...present(children));
  return e;
}

// present answers nodes flattened, without the null and false ones.
function present(nodes) {
  return nodes.flat(Infinity).filter(n => n != null && n !== false);
}

// put makes nodes (null and false skipped) parent's content.
export function put(parent, ...nodes) {
  parent.replaceChildren(...present(nodes));
}

// update makes nodes parent's content as put does, but leaves it alone
// when it would look the same, or while the person types in it; what had
// the focus in it (found again by its label or text) keeps it.
const shownHTML = new WeakMap();

export function update(parent, ...nodes) {
  const list = present(nodes);
  const html = list.map(n => n.nodeType === Node.ELEMENT_NODE ? n.outerHTML : n.textContent).join("");
  const focused = parent.contains(document.activeElement) ? document.activeElement : null;
  if (shownHTML.get(parent) === html || (focused && focused.matches("input:not([type=checkbox]), select, textarea"))) return;
  const key = focused && (focused.getAttribute("aria-label") || focused.textContent);
  parent.replaceChildren(...list);
  shownHTML.set(parent, html);
  if (key) {
    const again = Array.from(parent.querySelectorAll(focused.tagName)).find(e => (e.getAttribute("aria-label") || e.textContent) === key);
    if (again) again.focus();
  }
}

// show makes nodes the view's content.
export function show(...nodes) {
  put(view, ...nodes);
}

// report shows an error (none clears it); say shows a status.
export function report(err) {
  message.textContent = err ? (err.message || String(err)) : "";
}

export function say(text) {
  status.textContent = text || "";
}

// act runs a person's action, reporting its error.
export async function act(fn) {
  report(null);
  say("");
  try {
    await fn();
  } catch (err) {
    report(err);
  }
}

// button makes a button that acts on a click.
export function button(text, fn, attrs) {
  return el("button", Object.assign({ type: "button", onclick: () => act(fn) }, attrs), text);
}

// form makes a form whose submission acts (its submit button disabled
// meanwhile).
export function form(attrs, submit, ...children) {
  const f = el("form", attrs, ...children);
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const b = f.querySelector("button[type=submit]");
    if (b) b.disabled = true;
    await act(() => submit(f));
    if (b) b.disabled = false;
  });
  return f;
}

// field labels an input.
export function field(label, input) {
  return el("label", {}, label, input);
}

// options makes a select's options of items ({Id, Name}), selecting
// selected; blank adds a first option with value "".
export function options(items, selected, blank) {
  const list = items.map(i => el("option", { value: i.Id, selected: i.Id === selected }, i.Name));
  return blank != null ? [el("option", { value: "" }, blank), ...list] : list;
}

// selected answers the values a multiple select has selected.
export function selected(select) {
  return Array.from(select.selectedOptions, o => o.value);
}

// grid makes a table with a caption and column headers; fill updates its
// rows: cells(item) gives a row's cells, labelled by their headers for
// narrow windows, and attrs(item) its attributes.
export function grid(caption, headers) {
  // A row from the start, so that what follows the table does not move
  // when the first answer fills it.
  const body = el("tbody", {}, el("tr", {}, el("td", { colspan: String(headers.length) }, "Loading…")));
  const table = el("table", {}, el("caption", {}, caption),
    el("thead", {}, el("tr", {}, headers.map(h => el("th", { scope: "col" }, h)))), body);
  const fill = (items, cells, attrs) => update(body, items.length ? items.map(item => el("tr", attrs ? attrs(item) : {},
    cells(item).map((c, i) => el("td", { "data-label": headers[i] || null }, c ?? ""))))
    : el("tr", {}, el("td", { colspan: String(headers.length) }, "None yet.")));
  return { table, fill };
}

// tabs makes a navigation of links ([text, href]); the one whose href is
// the longest prefix of the hash shown is marked as the current page.
export function tabs(label, links) {
  const h = location.hash;
  const current = links.map(l => l[1]).filter(href => h === href || h.startsWith(href + "/")).sort((a, b) => b.length - a.length)[0];
  return el("nav", { class: "tabs", "aria-label": label },
    links.map(([text, href]) => el("a", { href, "aria-current": href === current ? "page" : null }, text)));
}

// when formats a time ("" for none).
export function when(t) {
  return t ? new Date(t).toLocaleString() : "";
}

// bytes formats a size.
export function bytes(n) {
  const units = ["bytes", "KiB", "MiB", "GiB"];
  let i = 0;
  for (; n >= 1024 && i < units.length - 1; i++) n /= 1024;
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}

const icons = { Success: "✓", Failed: "✗", TimedOut: "✗", Executing: "▶", Running: "▶", Cancelling: "■", Canceled: "■",
  Queued: "…", Pending: "…", Skipped: "↷", Waiting: "‖" };

// stateOf answers the state a task (or a dashboard item) shows: Waiting
// while it waits for a person.
export function stateOf(t) {
  return t.HasPendingInterruptions ? "Waiting" : t.State;
}

// badge shows a state by its text, with an icon and a color.
export function badge(state) {
  return el("span", { class: "badge state-" + String(state).toLowerCase(), "data-state": state },
    el("span", { "aria-hidden": "true" }, (icons[state] || "•") + " "), state);
}

// The signed-in user and their permissions, read once after sign-in.
let session = null;

// signedIn reads the signed-in user and their permissions (once), and starts
// the live updates.
export async function signedIn() {
  if (!session) {
    const [me, perms] = await Promise.all([api("GET", "/api/users/me"), api("GET", "/api/users/me/permissions")]);
    session = { me, perms };
  }
  startLive();
  return session;
}

// signedOut forgets the session.
export function signedOut() {
  session = null;
  stopLive();
}

// me answers the signed-in user.
export function me() {
  return session.me;
}

// can reports whether the signed-in user has perm: a system permission,
// or a space permission not restricted away from scope's project, project
// group and environment (any of them may be left out).
export function can(perm, scope = {}) {
  const p = session && session.perms;
  if (!p) return false;
  if ((p.SystemPermissions || []).includes(perm)) return true;
  const within = (ids, id) => !id || !ids || !ids.length || ids.includes(id);
  return ((p.SpacePermissions || {})[perm] || []).some(r => within(r.RestrictedToProjectIds, scope.project) &&
    within(r.RestrictedToProjectGroupIds, scope.projectGroup) && within(r.RestrictedToEnvironmentIds, scope.environment));
}

// Live refreshes. A page registers each of its renders with the ids (or
// id prefixes, such as "ServerTasks-") of what it shows; a render runs on
// a relevant "changed" event of /api/live, on any "resync", and on a poll:
// every 2 s while the event stream is not open, every 10 s while it is. A
// render runs at most once every 250 ms, never twice at once.
const watchers = [];
let source = null;
let streaming = false;
let poll = null;

// live registers render for what ids name, and runs it at once.
export function live(render, ...ids) {
  const w = { render, ids, timer: null, busy: false, again: false, last: 0 };
  watchers.push(w);
  return run(w);
}

// leave forgets the page shown: its renders and its messages.
export function leave() {
  for (const w of watchers) clearTimeout(w.timer);
  watchers.length = 0;
  report(null);
  say("");
}

async function run(w) {
  if (w.busy) {
    w.again = true;
    return;
  }
  w.busy = true;
  w.last = Date.now();
  try {
    await w.render();
  } catch (err) {
    if (watchers.includes(w)) report(err);
  }
  w.busy = false;
  if (w.again) {
    w.again = false;
    kick(w);
  }
}

// kick runs w's render soon: now, or 250 ms after its last run.
function kick(w) {
  if (w.timer || !watchers.includes(w)) return;
  w.timer = setTimeout(() => {
    w.timer = null;
    if (watchers.includes(w)) run(w);
  }, Math.max(0, w.last + 250 - Date.now()));
}

function changed(id) {
  for (const w of watchers) {
    if (w.ids.some(x => x.endsWith("-") ? id.startsWith(x) : id === x)) kick(w);
  }
}

// refresh runs the renders of the page shown soon (after an action).
export function refresh() {
  watchers.forEach(kick);
}

function polling() {
  clearInterval(poll);
  poll = setInterval(refresh, streaming ? 10000 : 2000);
}

function startLive() {
  if (source) return;
  source = new EventSource("/api/live");
  source.addEventListener("open", () => {
    streaming = true;
    polling();
    refresh(); // what changed while it was closed
  });
  source.addEventListener("changed", (ev) => changed(ev.data));
  source.addEventListener("resync", refresh);
  source.addEventListener("error", () => {
    // Closed for good (no such route yet: 404) or reconnecting: poll.
    streaming = false;
    polling();
  });
  polling();
}

function stopLive() {
  if (source) source.close();
  source = null;
  streaming = false;
  clearInterval(poll);
  poll = null;
}
