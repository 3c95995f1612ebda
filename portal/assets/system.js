// Configuration → Nodes and Cluster overview, and Tasks.
"use strict";

import { api, el, show, update, grid, live, refresh, act, button, field, form, can, say, when, badge, stateOf, tabs, HASH } from "./core.js";

// configuration is the navigation between the Configuration pages.
export function configuration() {
  return tabs("Configuration", [["Nodes", "#/configuration/nodes"], ["Cluster overview", "#/configuration/cluster"],
    ["Users", "#/configuration/users"], ["Teams", "#/configuration/teams"], ["Roles", "#/configuration/roles"],
    ["Audit", "#/configuration/audit"]]);
}

// Nodes: each node's rank, last seen (a warning when offline), running tasks,
// and its task cap and drain toggle, editable in place with ConfigureServer.
export async function nodes() {
  const { table, fill } = grid("The cluster's nodes", ["Name", "Rank", "Last seen", "Running tasks", "Task cap", "Draining"]);
  show(el("h1", {}, "Nodes"), configuration(), table);
  await live(async () => {
    const page = await api("GET", "/api/octopusservernodes?take=1000");
    fill(page.Items, nodeCells, n => ({ "data-node": n.Name }));
  }, "OctopusServerNodes-");
}

function nodeCells(n) {
  const change = (fields) => act(async () => {
    const current = await api("GET", "/api/octopusservernodes/" + n.Id);
    await api("PUT", "/api/octopusservernodes/" + n.Id, Object.assign(current, fields));
    refresh();
  });
  let cap = String(n.MaxConcurrentTasks);
  let drain = n.IsInMaintenanceMode ? "yes" : "no";
  if (can("ConfigureServer")) {
    cap = el("input", { type: "number", min: "0", value: cap, "aria-label": "Task cap of " + n.Name });
    cap.addEventListener("change", () => change({ MaxConcurrentTasks: Number(cap.value) }));
    drain = el("input", { type: "checkbox", "aria-label": "Drain " + n.Name, checked: n.IsInMaintenanceMode });
    drain.addEventListener("change", () => change({ IsInMaintenanceMode: drain.checked }));
  }
  const seen = n.LastSeen ? when(n.LastSeen) : "never";
  return [n.Name, n.Rank || "", el("span", { class: n.IsOffline ? "warn" : null }, (n.IsOffline ? "⚠ offline since " : "") + seen),
    String(n.RunningTaskCount || 0), cap, drain];
}

// Cluster overview: the heartbeat and stale timeout (editable with
// ConfigureServer), and the servers with warnings for a stale heartbeat, a
// version or master key out of sync, and remove for an offline one.
export async function cluster() {
  const facts = el("p");
  const heartbeat = el("input", { type: "number", min: "0.1", step: "0.1", name: "heartbeat" });
  const stale = el("input", { type: "number", min: "0.3", step: "0.1", name: "stale" });
  const settings = can("ConfigureServer") && form({ class: "stack", "aria-label": "The cluster's configuration" }, async () => {
    await api("PUT", "/api/cluster", { HeartbeatFrequencySeconds: Number(heartbeat.value), StaleTimeoutSeconds: Number(stale.value) });
    say("Saved.");
  }, field("Heartbeat frequency (seconds)", heartbeat), field("Stale timeout (seconds)", stale), el("button", { type: "submit" }, "Save"));
  const { table, fill } = grid("Servers", ["Name", "Operating system", "Version", "IP addresses", "Components", "Heartbeat", "Master key", ""]);
  show(el("h1", {}, "Cluster overview"), configuration(), el("h2", {}, "Configuration"), facts, settings, table);
  let first = true;
  await live(async () => {
    const c = await api("GET", "/api/cluster");
    if (first) {
      heartbeat.value = c.HeartbeatFrequencySeconds;
      stale.value = c.StaleTimeoutSeconds;
      first = false;
    }
    facts.textContent = `${c.OnlineNodeCount} of ${c.NodeCount} nodes online; version ${c.ClusterVersion}; leader's term ${c.Term}; ` +
      `a heartbeat every ${c.HeartbeatFrequencySeconds} s, stale after ${c.StaleTimeoutSeconds} s.`;
    fill(c.Servers, serverCells, sv => ({ "data-server": sv.Name }));
  }, "OctopusServerNodes-");
}

function serverCells(sv) {
  const warn = (ok, text) => el("span", { class: ok ? null : "warn" }, (ok ? "" : "⚠ ") + text);
  const remove = can("ConfigureServer") && sv.HeartbeatStatus === "Stale" &&
    button("Remove", async () => {
      await api("DELETE", "/api/octopusservernodes/" + sv.NodeId);
      refresh();
    }, { "aria-label": "Remove " + sv.Name });
  return [sv.Name + (sv.Rank ? " (" + sv.Rank + ")" : ""), sv.OperatingSystem || "",
    warn(sv.VersionInSync, sv.Version + (sv.VersionInSync ? "" : " (not in sync)")), (sv.IPAddresses || []).join(", "),
    (sv.Components || []).map(co => co.Name + ": " + co.Status).join("; "),
    warn(sv.HeartbeatStatus === "Current", sv.HeartbeatStatus), warn(sv.MasterKeyInSync, sv.MasterKeyInSync ? "in sync" : "not in sync"), remove];
}

// Tasks: the newest fifty, filtered by state and node, each linking to its
// page.
export async function tasks() {
  const state = el("select", { name: "state" }, ["", "Queued", "Executing", "Cancelling", "Success", "Failed", "Canceled", "TimedOut"]
    .map(v => el("option", { value: v }, v || "any")));
  const node = el("input", { type: "text", name: "node", placeholder: "any" });
  const { table, fill } = grid("Newest first", ["Task", "State", "Node", "Queued"]);
  show(el("h1", {}, "Tasks"), form({ class: "filters", "aria-label": "Filter the tasks" }, refresh, field("State", state), field("Node", node)), table);
  state.addEventListener("change", refresh);
  node.addEventListener("change", refresh);
  await live(async () => {
    const q = new URLSearchParams({ take: "50" });
    if (state.value) q.set("states", state.value);
    if (node.value.trim()) q.set("node", node.value.trim());
    const page = await api("GET", "/api/tasks?" + q);
    fill(page.Items, t => [el("a", { href: HASH + "/tasks/" + t.Id }, t.Description || t.Name), badge(stateOf(t)), t.ServerNode || "", when(t.QueueTime)],
      t => ({ "data-task": t.Id }));
  }, "ServerTasks-");
}

// A task: its state, node and log, followed live; cancel with TaskCancel; a
// deployment's task links to the deployment's progress.
export async function task(id) {
  const status = el("p", { class: "status" });
  const log = el("pre", { class: "log", "aria-label": "Log of " + id });
  const links = el("p");
  const cancel = can("TaskCancel") && button("Cancel", async () => {
    await api("POST", "/api/tasks/" + id + "/cancel");
    refresh();
  });
  show(el("h1", {}, id), status, links, cancel, log);
  await live(async () => {
    const t = await api("GET", "/api/tasks/" + id);
    update(status, badge(stateOf(t)), ` ${t.Description || t.Name}${t.ServerNode ? " on " + t.ServerNode : ""}`);
    if (cancel) cancel.hidden = t.IsCompleted;
    const deployment = t.Arguments && t.Arguments.DeploymentId;
    if (deployment && !links.firstChild) links.append(el("a", { href: HASH + "/deployments/" + deployment }, "The deployment's progress"));
    const resp = await fetch("/api/tasks/" + id + "/raw", { credentials: "same-origin" });
    const text = resp.ok ? await resp.text() : log.textContent;
    if (text !== log.textContent) log.textContent = text;
  }, id);
}
