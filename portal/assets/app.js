// cuttle's portal: hash routes over the API, signed in with a session
// cookie. Writes carry the CSRF token the sign-in set in a cookie.
"use strict";

const view = document.getElementById("view");
let timer = null;

function csrf() {
  const m = document.cookie.match(/(?:^|; )Octopus-Csrf-Token=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : "";
}

async function api(method, path, body) {
  const opts = { method, credentials: "same-origin", headers: { "Accept": "application/json" } };
  if (method !== "GET") {
    opts.headers["X-Octopus-Csrf-Token"] = csrf();
  }
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  if (resp.status === 401) {
    location.hash = "#/signin";
    throw new Error("signed out");
  }
  const text = await resp.text();
  const data = text ? JSON.parse(text) : null;
  if (!resp.ok) {
    throw new Error((data && data.ErrorMessage) || resp.statusText);
  }
  return data;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, "");
    else if (v !== false && v != null) e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function show(...nodes) {
  view.replaceChildren(...nodes);
}

function signIn() {
  document.getElementById("signout").hidden = true;
  const message = el("p", { class: "error", role: "alert" });
  const form = el("form", { class: "signin" },
    el("h1", {}, "Sign in"),
    el("label", {}, "Username", el("input", { type: "text", name: "username", autocomplete: "username", required: true })),
    el("label", {}, "Password", el("input", { type: "password", name: "password", autocomplete: "current-password", required: true })),
    el("label", {}, el("span", {}, el("input", { type: "checkbox", name: "remember" }), " Remember me")),
    el("button", { type: "submit" }, "Sign in"),
    message);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", "/api/users/login", {
        Username: form.username.value, Password: form.password.value, RememberMe: form.remember.checked });
      location.hash = "#/configuration/nodes";
    } catch (err) {
      message.textContent = err.message;
    }
  });
  show(form);
  form.username.focus();
}

async function nodes() {
  document.getElementById("signout").hidden = false;
  const message = el("p", { class: "error", role: "alert" });
  const body = el("tbody");
  const table = el("table", {},
    el("caption", {}, "The cluster's nodes"),
    el("thead", {}, el("tr", {}, ...["Name", "Rank", "Last seen", "Running tasks", "Task cap", "Draining"].map(h => el("th", { scope: "col" }, h)))),
    body);
  show(el("h1", {}, "Nodes"), table, message);
  const render = async () => {
    let page;
    try {
      page = await api("GET", "/api/octopusservernodes?take=1000");
    } catch (err) {
      message.textContent = err.message;
      return;
    }
    message.textContent = "";
    body.replaceChildren(...page.Items.map(n => nodeRow(n, message)));
  };
  await render();
  timer = setInterval(render, 2000);
}

function nodeRow(n, message) {
  const change = async (fields) => {
    try {
      const current = await api("GET", "/api/octopusservernodes/" + n.Id);
      await api("PUT", "/api/octopusservernodes/" + n.Id, Object.assign(current, fields));
    } catch (err) {
      message.textContent = err.message;
    }
  };
  const cap = el("input", { type: "number", min: "0", value: String(n.MaxConcurrentTasks), "aria-label": "Task cap of " + n.Name });
  cap.addEventListener("change", () => change({ MaxConcurrentTasks: Number(cap.value) }));
  const drain = el("input", { type: "checkbox", "aria-label": "Drain " + n.Name, checked: n.IsInMaintenanceMode });
  drain.addEventListener("change", () => change({ IsInMaintenanceMode: drain.checked }));
  const seen = n.LastSeen ? new Date(n.LastSeen).toLocaleString() : "never";
  return el("tr", { "data-node": n.Name },
    el("td", { "data-label": "Name" }, n.Name),
    el("td", { "data-label": "Rank" }, n.Rank || ""),
    el("td", { "data-label": "Last seen", class: n.IsOffline ? "offline" : null }, (n.IsOffline ? "⚠ offline since " : "") + seen),
    el("td", { "data-label": "Running tasks" }, String(n.RunningTaskCount || 0)),
    el("td", { "data-label": "Task cap" }, cap),
    el("td", { "data-label": "Draining" }, drain));
}

async function cluster() {
  document.getElementById("signout").hidden = false;
  const message = el("p", { class: "error", role: "alert" });
  const settings = el("form", { class: "settings" });
  const body = el("tbody");
  const table = el("table", {},
    el("caption", {}, "Servers"),
    el("thead", {}, el("tr", {}, ...["Name", "Operating system", "Version", "IP addresses", "Components", "Heartbeat", "Master key", ""].map(h => el("th", { scope: "col" }, h)))),
    body);
  show(el("h1", {}, "Cluster overview"), settings, table, message);
  const heartbeat = el("input", { type: "number", min: "0.1", step: "0.1", name: "heartbeat" });
  const stale = el("input", { type: "number", min: "0.3", step: "0.1", name: "stale" });
  const facts = el("p");
  settings.append(el("h2", {}, "Configuration"), facts,
    el("label", {}, "Heartbeat frequency (seconds)", heartbeat),
    el("label", {}, "Stale timeout (seconds)", stale),
    el("button", { type: "submit" }, "Save"));
  settings.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("PUT", "/api/cluster", { HeartbeatFrequencySeconds: Number(heartbeat.value), StaleTimeoutSeconds: Number(stale.value) });
      message.textContent = "";
    } catch (err) {
      message.textContent = err.message;
    }
  });
  let first = true;
  const render = async () => {
    let c;
    try {
      c = await api("GET", "/api/cluster");
    } catch (err) {
      message.textContent = err.message;
      return;
    }
    if (first) {
      heartbeat.value = c.HeartbeatFrequencySeconds;
      stale.value = c.StaleTimeoutSeconds;
      first = false;
    }
    facts.textContent = `${c.OnlineNodeCount} of ${c.NodeCount} nodes online; version ${c.ClusterVersion}; leader's term ${c.Term}.`;
    body.replaceChildren(...c.Servers.map(sv => {
      const warn = (ok, text) => ok ? text : "⚠ " + text;
      const remove = el("button", { type: "button", disabled: sv.HeartbeatStatus !== "Stale", "aria-label": "Remove " + sv.Name }, "Remove");
      remove.addEventListener("click", async () => {
        try {
          await api("DELETE", "/api/octopusservernodes/" + sv.NodeId);
          render();
        } catch (err) {
          message.textContent = err.message;
        }
      });
      return el("tr", { "data-server": sv.Name },
        el("td", { "data-label": "Name" }, sv.Name + (sv.Rank ? " (" + sv.Rank + ")" : "")),
        el("td", { "data-label": "Operating system" }, sv.OperatingSystem || ""),
        el("td", { "data-label": "Version", class: sv.VersionInSync ? null : "offline" }, warn(sv.VersionInSync, sv.Version + (sv.VersionInSync ? "" : " (not in sync)"))),
        el("td", { "data-label": "IP addresses" }, (sv.IPAddresses || []).join(", ")),
        el("td", { "data-label": "Components" }, (sv.Components || []).map(co => co.Name + ": " + co.Status).join("; ")),
        el("td", { "data-label": "Heartbeat", class: sv.HeartbeatStatus === "Current" ? null : "offline" }, warn(sv.HeartbeatStatus === "Current", sv.HeartbeatStatus)),
        el("td", { "data-label": "Master key", class: sv.MasterKeyInSync ? null : "offline" }, warn(sv.MasterKeyInSync, sv.MasterKeyInSync ? "in sync" : "not in sync")),
        el("td", {}, remove));
    }));
  };
  await render();
  timer = setInterval(render, 2000);
}

async function tasks() {
  document.getElementById("signout").hidden = false;
  const message = el("p", { class: "error", role: "alert" });
  const state = el("select", { name: "state" }, ...["", "Queued", "Executing", "Cancelling", "Success", "Failed", "Canceled", "TimedOut"].map(v => el("option", { value: v }, v || "any")));
  const node = el("input", { type: "text", name: "node", placeholder: "any" });
  const body = el("tbody");
  show(el("h1", {}, "Tasks"),
    el("form", { class: "filters" }, el("label", {}, "State", state), el("label", {}, "Node", node)),
    el("table", {}, el("caption", {}, "Newest first"),
      el("thead", {}, el("tr", {}, ...["Task", "State", "Node", "Queued"].map(h => el("th", { scope: "col" }, h)))), body),
    message);
  const render = async () => {
    const q = new URLSearchParams({ take: "50" });
    if (state.value) q.set("states", state.value);
    if (node.value.trim()) q.set("node", node.value.trim());
    let page;
    try {
      page = await api("GET", "/api/tasks?" + q);
    } catch (err) {
      message.textContent = err.message;
      return;
    }
    message.textContent = "";
    body.replaceChildren(...page.Items.map(t => el("tr", { "data-task": t.Id },
      el("td", { "data-label": "Task" }, el("a", { href: "#/tasks/" + t.Id }, t.Description || t.Name)),
      el("td", { "data-label": "State", class: t.State === "Failed" ? "offline" : null }, t.State),
      el("td", { "data-label": "Node" }, t.ServerNode || ""),
      el("td", { "data-label": "Queued" }, t.QueueTime ? new Date(t.QueueTime).toLocaleString() : ""))));
  };
  state.addEventListener("change", render);
  node.addEventListener("change", render);
  await render();
  timer = setInterval(render, 2000);
}

async function task(id) {
  document.getElementById("signout").hidden = false;
  const message = el("p", { class: "error", role: "alert" });
  const status = el("p", { class: "status" });
  const log = el("pre", { class: "log", "aria-label": "Log of " + id });
  const cancel = el("button", { type: "button" }, "Cancel");
  cancel.addEventListener("click", async () => {
    try {
      await api("POST", "/api/tasks/" + id + "/cancel");
    } catch (err) {
      message.textContent = err.message;
    }
  });
  show(el("h1", {}, id), status, cancel, log, message);
  const render = async () => {
    try {
      const t = await api("GET", "/api/tasks/" + id);
      status.textContent = `${t.Description || t.Name}: ${t.State}${t.ServerNode ? " on " + t.ServerNode : ""}`;
      cancel.hidden = t.IsCompleted;
      const resp = await fetch("/api/tasks/" + id + "/raw", { credentials: "same-origin" });
      if (resp.ok) log.textContent = await resp.text();
    } catch (err) {
      message.textContent = err.message;
    }
  };
  await render();
  timer = setInterval(render, 2000);
}

async function targets() {
  document.getElementById("signout").hidden = false;
  const message = el("p", { class: "error", role: "alert" });
  const body = el("tbody");
  const commands = el("pre", { class: "log", "aria-label": "Commands to add a target" });
  show(el("h1", {}, "Deployment targets"),
    el("table", {}, el("caption", {}, "Targets and their health"),
      el("thead", {}, el("tr", {}, ...["Name", "Roles", "Environments", "Health", "Style"].map(h => el("th", { scope: "col" }, h)))), body),
    el("h2", {}, "Add a target"),
    el("p", {}, "On the target, run (a polling agent; the thumbprint is this cluster's, which the agent pins):"),
    commands, message);
  try {
    const [c, envs] = await Promise.all([api("GET", "/api/cluster"), api("GET", "/api/Spaces-1/environments/all")]);
    const env = envs.length ? envs[0].Name : "Test";
    commands.textContent = [
      "cuttle agent configure --polling --name $(hostname)",
      `cuttle agent register --server ${location.origin} --api-key API-... \\`,
      `  --server-thumbprint ${c.CertificateThumbprint} --environment ${env} --role web`,
      "cuttle agent run",
    ].join("\n");
  } catch (err) {
    message.textContent = err.message;
  }
  const render = async () => {
    let page;
    try {
      page = await api("GET", "/api/Spaces-1/machines?take=1000");
    } catch (err) {
      message.textContent = err.message;
      return;
    }
    body.replaceChildren(...page.Items.map(m => el("tr", { "data-machine": m.Name },
      el("td", { "data-label": "Name" }, m.Name),
      el("td", { "data-label": "Roles" }, (m.Roles || []).join(", ")),
      el("td", { "data-label": "Environments" }, (m.EnvironmentIds || []).join(", ")),
      el("td", { "data-label": "Health", class: m.HealthStatus === "Healthy" ? null : "offline" }, m.HealthStatus),
      el("td", { "data-label": "Style" }, (m.Endpoint && m.Endpoint.CommunicationStyle) || ""))));
  };
  await render();
  timer = setInterval(render, 2000);
}

const routes = { "#/signin": signIn, "#/infrastructure/machines": targets, "#/configuration/nodes": nodes, "#/configuration/cluster": cluster, "#/tasks": tasks };

function route() {
  clearInterval(timer);
  const m = location.hash.match(/^#\/tasks\/(ServerTasks-\d+)$/);
  if (m) {
    task(m[1]);
    return;
  }
  const page = routes[location.hash] || nodes;
  page();
}

document.getElementById("signout").addEventListener("click", async () => {
  try {
    await api("POST", "/api/users/logout");
  } finally {
    location.hash = "#/signin";
  }
});
window.addEventListener("hashchange", route);
route();
