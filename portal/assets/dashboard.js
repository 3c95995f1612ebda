// The dashboard.
"use strict";

import { api, el, show, update, live, badge, stateOf, can, SPACE, HASH } from "./core.js";

// Dashboard: projects (rows, grouped by project group) by environments
// (columns); each cell the latest deployment's release version and state,
// linking to its task.
export async function dashboard() {
  const holder = el("div", { class: "wide" });
  show(el("h1", {}, "Dashboard"), holder);
  await live(async () => {
    const [d, groups] = await Promise.all([api("GET", SPACE + "/dashboard"), api("GET", SPACE + "/projectgroups/all")]);
    update(holder, d.Projects.length ? board(d, groups) : el("p", {}, "No projects yet. ",
      can("ProjectCreate") && el("a", { href: HASH + "/projects" }, "Add one.")));
  }, "Deployments-", "ServerTasks-", "Projects-", "ProjectGroups-", "Environments-", "Releases-");
}

// board makes the dashboard's table.
function board(d, groups) {
  const latest = new Map(d.Items.map(i => [i.ProjectId + "/" + i.EnvironmentId, i]));
  const head = el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Project"),
    d.Environments.map(e => el("th", { scope: "col" }, e.Name))));
  const bodies = groups.map(g => {
    const projects = d.Projects.filter(p => p.ProjectGroupId === g.Id);
    return projects.length && el("tbody", {},
      el("tr", { class: "group" }, el("th", { scope: "rowgroup", colspan: String(d.Environments.length + 1) }, g.Name)),
      projects.map(p => el("tr", { "data-project": p.Name },
        el("th", { scope: "row" }, el("a", { href: HASH + "/projects/" + p.Slug }, p.Name)),
        d.Environments.map(e => el("td", { "data-label": e.Name, "data-environment": e.Name }, cell(latest.get(p.Id + "/" + e.Id)))))));
  });
  return el("table", { class: "dashboard" }, el("caption", {}, "Latest deployment of each project to each environment"), head, bodies);
}

function cell(item) {
  if (!item) return el("span", { class: "none" }, "—");
  return el("a", { href: HASH + "/tasks/" + item.TaskId, class: "cell" },
    el("span", { class: "version" }, item.ReleaseVersion), " ", badge(stateOf(item)));
}
