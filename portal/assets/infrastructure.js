// Infrastructure → Environments and Deployment targets.
"use strict";

import { api, el, show, grid, live, refresh, button, field, form, can, tabs, SPACE, HASH } from "./core.js";

// infrastructure is the navigation between the Infrastructure pages.
function infrastructure() {
  return tabs("Infrastructure", [["Environments", HASH + "/infrastructure/environments"],
    ["Deployment targets", HASH + "/infrastructure/machines"]]);
}

// Environments: the list in their order, created with EnvironmentCreate
// and deleted with EnvironmentDelete (the server refuses while targets are
// in one).
export async function environments() {
  const { table, fill } = grid("Environments, in their order", ["Name", "Description", "Guided failure", ""]);
  const name = el("input", { type: "text", required: true });
  const description = el("input", { type: "text" });
  const guided = el("input", { type: "checkbox" });
  const add = can("EnvironmentCreate") && form({ class: "stack", "aria-label": "Add an environment" }, async (f) => {
    await api("POST", SPACE + "/environments", { Name: name.value, Description: description.value, UseGuidedFailure: guided.checked });
    f.reset();
    refresh();
  }, el("h2", {}, "Add an environment"), field("Name", name), field("Description", description),
  el("label", { class: "check" }, guided, "Use guided failure"), el("button", { type: "submit" }, "Add"));
  show(el("h1", {}, "Environments"), infrastructure(), table, add);
  await live(async () => {
    const envs = await api("GET", SPACE + "/environments/all");
    fill(envs, e => [e.Name, e.Description || "", e.UseGuidedFailure ? "on" : "off",
      can("EnvironmentDelete", { environment: e.Id }) && button("Delete", async () => {
        await api("DELETE", SPACE + "/environments/" + e.Id);
        refresh();
      }, { "aria-label": "Delete " + e.Name })], e => ({ "data-environment": e.Name }));
  }, "Environments-");
}

// Deployment targets: their roles, environments and health, and the
// commands that add a polling agent, with the cluster's thumbprint.
export async function targets() {
  const { table, fill } = grid("Targets and their health", ["Name", "Roles", "Environments", "Health", "Style"]);
  const commands = el("pre", { class: "log", "aria-label": "Commands to add a target" });
  show(el("h1", {}, "Deployment targets"), infrastructure(), table, el("h2", {}, "Add a target"),
    el("p", {}, "On the target, run (a polling agent; the thumbprint is this cluster's, which the agent pins):"), commands);
  const [c, envs] = await Promise.all([api("GET", "/api/cluster"), api("GET", SPACE + "/environments/all")]);
  const names = Object.fromEntries(envs.map(e => [e.Id, e.Name]));
  commands.textContent = [
    "# The agent polls the host of --server on port 10943; behind a balancer that carries HTTP only,",
    "# add --address HOST:PORT to register: a node's polling address, or a TCP balancer's.",
    "cuttle agent configure --polling --name $(hostname)",
    `cuttle agent register --server ${location.origin} --api-key API-... \\`,
    `  --server-thumbprint ${c.CertificateThumbprint} --environment ${envs.length ? envs[0].Name : "Test"} --role web`,
    "cuttle agent run",
  ].join("\n");
  await live(async () => {
    const page = await api("GET", SPACE + "/machines?take=1000");
    fill(page.Items, m => [m.Name, (m.Roles || []).join(", "), (m.EnvironmentIds || []).map(id => names[id] || id).join(", "),
      el("span", { class: m.HealthStatus === "Healthy" ? null : "warn" }, (m.HealthStatus === "Healthy" ? "" : "⚠ ") + m.HealthStatus),
      (m.Endpoint && m.Endpoint.CommunicationStyle) || ""], m => ({ "data-machine": m.Name }));
  }, "Machines-");
}
