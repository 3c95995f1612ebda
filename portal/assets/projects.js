// Projects: the list, and a project's pages (overview, process,
// variables, channels, releases, a release, a deployment).
"use strict";

import { api, el, show, put, update, grid, live, refresh, field, form, options, can, badge, stateOf, tabs, when, SPACE, HASH } from "./core.js";
import { processEditor } from "./process.js";
import { variablesEditor } from "./variables.js";
import { deployment } from "./deployment.js";

// Projects: every project by project group, created with ProjectCreate in
// a group and with a lifecycle.
export async function projects() {
  const [groups, lifecycles] = await Promise.all([api("GET", SPACE + "/projectgroups/all"), api("GET", SPACE + "/lifecycles/all")]);
  const list = el("div");
  const name = el("input", { type: "text", required: true });
  const description = el("input", { type: "text" });
  const group = el("select", { required: true }, options(groups));
  const lifecycle = el("select", { required: true }, options(lifecycles));
  show(el("h1", {}, "Projects"), list, can("ProjectCreate") && form({ class: "stack", "aria-label": "Add a project" }, async () => {
    const p = await api("POST", SPACE + "/projects", { Name: name.value, Description: description.value, ProjectGroupId: group.value,
      LifecycleId: lifecycle.value });
    location.hash = HASH + "/projects/" + p.Slug + "/deployments/process";
  }, el("h2", {}, "Add a project"), field("Name", name), field("Description", description), field("Project group", group),
  field("Lifecycle", lifecycle), el("button", { type: "submit" }, "Add")));
  const lifecycleName = Object.fromEntries(lifecycles.map(l => [l.Id, l.Name]));
  await live(async () => {
    const all = await api("GET", SPACE + "/projects/all");
    update(list, groups.map(g => {
      const { table, fill } = grid(g.Name, ["Project", "Description", "Lifecycle"]);
      fill(all.filter(p => p.ProjectGroupId === g.Id), p => [el("a", { href: HASH + "/projects/" + p.Slug }, p.Name), p.Description || "",
        lifecycleName[p.LifecycleId] || p.LifecycleId], p => ({ "data-project": p.Name }));
      return table;
    }));
  }, "Projects-", "ProjectGroups-");
}

// A project's page: its tabs, and the page rest names (the overview when
// none): deployments/process, variables, deployments/channels,
// deployments/releases, deployments/releases/<version> and
// deployments/releases/<version>/deployments/<id>.
export async function project(key, rest = "") {
  const p = await api("GET", SPACE + "/projects/" + encodeURIComponent(key));
  const base = HASH + "/projects/" + key;
  const body = el("div");
  show(el("h1", {}, p.Name), tabs("Project", [["Overview", base], ["Process", base + "/deployments/process"], ["Variables", base + "/variables"],
    ["Channels", base + "/deployments/channels"], ["Releases", base + "/deployments/releases"]]), body);
  const release = rest.match(/^deployments\/releases\/([^/]+)(?:\/deployments\/(Deployments-\d+))?$/);
  if (release) {
    const version = decodeURIComponent(release[1]);
    return release[2] ? deployment(p, body, release[2]) : releasePage(p, body, base, version);
  }
  const page = { "": overview, "deployments/process": processEditor, "variables": variablesEditor,
    "deployments/channels": channels, "deployments/releases": releases }[rest];
  if (!page) throw new Error(`The project ${p.Name} has no page ${rest}.`);
  return page(p, body, base);
}

// The overview: the project's group, lifecycle and description, and its
// latest deployment to each environment.
async function overview(p, body) {
  const [group, lifecycle] = await Promise.all([api("GET", SPACE + "/projectgroups/" + p.ProjectGroupId), api("GET", SPACE + "/lifecycles/" + p.LifecycleId)]);
  const { table, fill } = grid("Latest deployment to each environment", ["Environment", "Release", "State", "When"]);
  put(body, el("p", {}, p.Description || ""), el("dl", {}, el("dt", {}, "Project group"), el("dd", {}, group.Name),
    el("dt", {}, "Lifecycle"), el("dd", {}, lifecycle.Name)), table);
  await live(async () => {
    const d = await api("GET", SPACE + "/dashboard");
    const items = new Map(d.Items.filter(i => i.ProjectId === p.Id).map(i => [i.EnvironmentId, i]));
    fill(d.Environments, e => {
      const i = items.get(e.Id);
      return i ? [e.Name, i.ReleaseVersion, el("a", { href: HASH + "/deployments/" + i.DeploymentId }, badge(stateOf(i))), when(i.Created)]
        : [e.Name, "", "not deployed", ""];
    }, e => ({ "data-environment": e.Name }));
  }, p.Id, "Deployments-", "ServerTasks-");
}

// Channels: the project's channels; another added with ProjectEdit.
async function channels(p, body) {
  const lifecycles = await api("GET", SPACE + "/lifecycles/all");
  const lifecycleName = Object.fromEntries(lifecycles.map(l => [l.Id, l.Name]));
  const { table, fill } = grid("Channels", ["Name", "Description", "Lifecycle", "Default"]);
  const name = el("input", { type: "text", required: true });
  const description = el("input", { type: "text" });
  const lifecycle = el("select", {}, options(lifecycles, null, "the project's"));
  put(body, table, can("ProjectEdit", { project: p.Id, projectGroup: p.ProjectGroupId }) &&
    form({ class: "stack", "aria-label": "Add a channel" }, async (f) => {
      await api("POST", SPACE + "/channels", { Name: name.value, Description: description.value, ProjectId: p.Id, LifecycleId: lifecycle.value || null });
      f.reset();
      refresh();
    }, el("h2", {}, "Add a channel"), field("Name", name), field("Description", description), field("Lifecycle", lifecycle),
    el("button", { type: "submit" }, "Add")));
  await live(async () => {
    const list = await api("GET", SPACE + "/projects/" + p.Id + "/channels/all");
    fill(list, c => [c.Name, c.Description || "", c.LifecycleId ? lifecycleName[c.LifecycleId] || c.LifecycleId : "the project's",
      c.IsDefault ? "default" : ""], c => ({ "data-channel": c.Name }));
  }, p.Id, "Channels-");
}

// Releases: the project's releases, newest first; one created with
// ReleaseCreate (its version by the project's template when left empty).
async function releases(p, body, base) {
  const chans = await api("GET", SPACE + "/projects/" + p.Id + "/channels/all");
  const { table, fill } = grid("Releases, newest first", ["Version", "Channel", "Assembled"]);
  const version = el("input", { type: "text", placeholder: "the next by the project's template" });
  const channel = el("select", {}, options(chans, (chans.find(c => c.IsDefault) || {}).Id));
  const notes = el("textarea", { rows: "3" });
  put(body, can("ReleaseCreate", { project: p.Id, projectGroup: p.ProjectGroupId }) &&
    form({ class: "stack", "aria-label": "Create a release" }, async () => {
      const r = await api("POST", SPACE + "/releases", { ProjectId: p.Id, Version: version.value.trim() || undefined, ChannelId: channel.value,
        ReleaseNotes: notes.value });
      location.hash = base + "/deployments/releases/" + encodeURIComponent(r.Version);
    }, el("h2", {}, "Create a release"), field("Version", version), field("Channel", channel), field("Release notes", notes),
    el("button", { type: "submit" }, "Create")), table);
  const channelName = Object.fromEntries(chans.map(c => [c.Id, c.Name]));
  await live(async () => {
    const page = await api("GET", SPACE + "/projects/" + p.Id + "/releases?take=100");
    fill(page.Items, r => [el("a", { href: base + "/deployments/releases/" + encodeURIComponent(r.Version) }, r.Version),
      channelName[r.ChannelId] || r.ChannelId, when(r.Assembled)], r => ({ "data-release": r.Version }));
  }, p.Id, "Releases-");
}

// A release: its notes, its deployments with their states, and a deploy
// to an environment (with guided failure on, off, or by default) with
// DeploymentCreate.
async function releasePage(p, body, base, version) {
  const [r, envs] = await Promise.all([api("GET", SPACE + "/projects/" + p.Id + "/releases/" + encodeURIComponent(version)),
    api("GET", SPACE + "/environments/all")]);
  const envName = Object.fromEntries(envs.map(e => [e.Id, e.Name]));
  const allowed = envs.filter(e => can("DeploymentCreate", { project: p.Id, projectGroup: p.ProjectGroupId, environment: e.Id }));
  const env = el("select", { required: true }, options(allowed));
  const guided = el("select", {}, [["", "as the project and environment say"], ["true", "on"], ["false", "off"]].map(([v, t]) => el("option", { value: v }, t)));
  const { table, fill } = grid("Deployments of this release, newest first", ["Environment", "State", "Created", ""]);
  put(body, el("h2", {}, "Release " + r.Version), r.ReleaseNotes && el("p", { class: "notes" }, r.ReleaseNotes),
    el("p", {}, "Assembled " + when(r.Assembled) + "."),
    allowed.length > 0 && form({ class: "inline", "aria-label": "Deploy this release" }, async () => {
      const d = await api("POST", SPACE + "/deployments", { ReleaseId: r.Id, EnvironmentId: env.value,
        UseGuidedFailure: guided.value ? guided.value === "true" : guidedByDefault(p, envs.find(e => e.Id === env.value)) });
      location.hash = base + "/deployments/releases/" + encodeURIComponent(r.Version) + "/deployments/" + d.Id;
    }, field("Environment", env), field("Guided failure", guided), el("button", { type: "submit" }, "Deploy")), table);
  await live(async () => {
    const page = await api("GET", SPACE + "/deployments?take=100&projects=" + p.Id);
    const mine = page.Items.filter(d => d.ReleaseId === r.Id);
    const states = mine.length ? await api("GET", "/api/tasks?take=100&ids=" + mine.map(d => d.TaskId).join(",")) : { Items: [] };
    const task = Object.fromEntries(states.Items.map(t => [t.Id, t]));
    fill(mine, d => [envName[d.EnvironmentId] || d.EnvironmentId, task[d.TaskId] && badge(stateOf(task[d.TaskId])),
      when(d.Created), el("a", { href: base + "/deployments/releases/" + encodeURIComponent(r.Version) + "/deployments/" + d.Id }, "Progress")],
    d => ({ "data-deployment": d.Id }));
  }, r.Id, "Deployments-", "ServerTasks-");
}

// guidedByDefault answers whether a deployment of project p to environment
// e uses guided failure by default: as the project says, or else as the
// environment does.
function guidedByDefault(p, e) {
  return { On: true, Off: false }[p.DefaultGuidedFailureMode] ?? e.UseGuidedFailure;
}

// releaseById shows a release named by its id (the official CLI's links).
export async function releaseById(id) {
  const r = await api("GET", SPACE + "/releases/" + id);
  const p = await api("GET", SPACE + "/projects/" + r.ProjectId);
  location.replace(HASH + "/projects/" + p.Slug + "/deployments/releases/" + encodeURIComponent(r.Version));
}

// deploymentById shows a deployment named by its id.
export async function deploymentById(id) {
  const d = await api("GET", SPACE + "/deployments/" + id);
  const [r, p] = await Promise.all([api("GET", SPACE + "/releases/" + d.ReleaseId), api("GET", SPACE + "/projects/" + d.ProjectId)]);
  location.replace(HASH + "/projects/" + p.Slug + "/deployments/releases/" + encodeURIComponent(r.Version) + "/deployments/" + id);
}
