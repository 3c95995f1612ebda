// Configuration → Users, Teams, Roles and Audit, and the signed-in user's
// API keys.
"use strict";

import { api, el, show, update, grid, live, refresh, button, field, form, options, selected, can, me, say, when, SPACE } from "./core.js";
import { configuration } from "./system.js";

// Users: every user, linking to their page; created with UserEdit (with a
// password when one is given).
export async function users() {
  const { table, fill } = grid("Users", ["Username", "Display name", "Email", "Active", "Kind"]);
  show(el("h1", {}, "Users"), configuration(), table, can("UserEdit") && newUser());
  await live(async () => {
    const list = await api("GET", "/api/users/all");
    fill(list, u => [el("a", { href: "#/configuration/users/" + u.Id }, u.Username), u.DisplayName, u.EmailAddress || "",
      u.IsActive ? "active" : "inactive", u.IsService ? "service account" : "person"], u => ({ "data-user": u.Username }));
  }, "Users-");
}

function newUser() {
  const username = el("input", { type: "text", required: true, autocomplete: "off" });
  const display = el("input", { type: "text" });
  const email = el("input", { type: "email" });
  const password = el("input", { type: "password", autocomplete: "new-password" });
  const service = el("input", { type: "checkbox" });
  return form({ class: "stack", "aria-label": "Add a user" }, async (f) => {
    const u = await api("POST", "/api/users", { Username: username.value, DisplayName: display.value, EmailAddress: email.value,
      IsActive: true, IsService: service.checked });
    if (password.value) await api("PUT", "/api/users/" + u.Id + "/password", { Password: password.value });
    f.reset();
    say(`Added ${u.Username}.`);
    refresh();
  }, el("h2", {}, "Add a user"), field("Username", username), field("Display name", display), field("Email", email),
  el("label", { class: "check" }, service, "Service account (signs in with API keys only)"),
  field("Password (optional)", password), el("button", { type: "submit" }, "Add"));
}

// A user: display name, email and active editable with UserEdit, and a
// new password set.
export async function user(id) {
  const u = await api("GET", "/api/users/" + id);
  const display = el("input", { type: "text", value: u.DisplayName });
  const email = el("input", { type: "email", value: u.EmailAddress || "" });
  const active = el("input", { type: "checkbox", checked: u.IsActive });
  const password = el("input", { type: "password", autocomplete: "new-password", required: true });
  const self = id === me().Id;
  const old = el("input", { type: "password", autocomplete: "current-password" });
  const editable = can("UserEdit");
  show(el("h1", {}, u.Username), configuration(),
    editable ? form({ class: "stack", "aria-label": "Edit " + u.Username }, async () => {
      const current = await api("GET", "/api/users/" + id);
      await api("PUT", "/api/users/" + id, Object.assign(current, { DisplayName: display.value, EmailAddress: email.value, IsActive: active.checked }));
      say("Saved.");
    }, field("Display name", display), field("Email", email), el("label", { class: "check" }, active, "Active"),
    el("button", { type: "submit" }, "Save"))
      : el("p", {}, `${u.DisplayName}${u.EmailAddress ? " <" + u.EmailAddress + ">" : ""}, ${u.IsActive ? "active" : "inactive"}.`),
    (editable || self) && !u.IsService && form({ class: "stack", "aria-label": "Set the password of " + u.Username }, async (f) => {
      await api("PUT", "/api/users/" + id + "/password", { Password: password.value, OldPassword: old.value });
      f.reset();
      say("The password is set; the user's sessions have ended.");
    }, el("h2", {}, "Set a password"), self && field("Current password", old), field("New password", password),
    el("button", { type: "submit" }, "Set the password")));
}

// Teams: every team, linking to its page; created with TeamCreate.
export async function teams() {
  const { table, fill } = grid("Teams", ["Name", "Description", "Members"]);
  const name = el("input", { type: "text", required: true });
  const description = el("input", { type: "text" });
  show(el("h1", {}, "Teams"), configuration(), table, can("TeamCreate") && form({ class: "stack", "aria-label": "Add a team" }, async (f) => {
    const t = await api("POST", "/api/teams", { Name: name.value, Description: description.value, MemberUserIds: [] });
    f.reset();
    location.hash = "#/configuration/teams/" + t.Id;
  }, el("h2", {}, "Add a team"), field("Name", name), field("Description", description), el("button", { type: "submit" }, "Add")));
  await live(async () => {
    const list = await api("GET", "/api/teams/all");
    fill(list, t => [el("a", { href: "#/configuration/teams/" + t.Id }, t.Name), t.Description || "",
      t.CanChangeMembers ? String(t.MemberUserIds.length) : "everyone"], t => ({ "data-team": t.Name }));
  }, "Teams-");
}

// A team: its members (changed with TeamEdit) and its scoped user roles
// (added and removed with TeamEdit); deleted with TeamDelete.
export async function team(id) {
  const [t, people, roles, projects, groups, envs] = await Promise.all([api("GET", "/api/teams/" + id), api("GET", "/api/users/all"),
    api("GET", "/api/userroles/all"), api("GET", SPACE + "/projects/all"), api("GET", SPACE + "/projectgroups/all"), api("GET", SPACE + "/environments/all")]);
  const names = (list) => Object.fromEntries(list.map(x => [x.Id, x.Name || x.Username]));
  const who = names(people), role = names(roles), project = names(projects), group = names(groups), env = names(envs);
  const members = grid("Members", ["User", ""]);
  const scoped = grid("Roles of the team", ["Role", "Projects", "Project groups", "Environments", ""]);
  const editable = can("TeamEdit") && t.CanChangeRoles;
  show(el("h1", {}, t.Name), configuration(), el("p", {}, t.Description || ""),
    t.CanChangeMembers ? [members.table, can("TeamEdit") && addMember(t, people)] : el("p", {}, "Every user is a member."),
    el("h2", {}, "Roles"), scoped.table, editable && addRole(t, { roles, projects, groups, envs }),
    t.CanBeDeleted && can("TeamDelete") && button("Delete the team", async () => {
      await api("DELETE", "/api/teams/" + id);
      location.hash = "#/configuration/teams";
    }));
  const list = (ids, of) => (ids || []).map(x => of[x] || x).join(", ") || "any";
  await live(async () => {
    const [current, given] = await Promise.all([api("GET", "/api/teams/" + id), api("GET", "/api/teams/" + id + "/scopeduserroles?take=1000")]);
    members.fill(current.MemberUserIds, m => [who[m] || m, can("TeamEdit") && button("Remove", async () => {
      const fresh = await api("GET", "/api/teams/" + id);
      fresh.MemberUserIds = fresh.MemberUserIds.filter(x => x !== m);
      await api("PUT", "/api/teams/" + id, fresh);
      refresh();
    }, { "aria-label": "Remove " + (who[m] || m) })], m => ({ "data-member": who[m] || m }));
    scoped.fill(given.Items, s => [role[s.UserRoleId] || s.UserRoleId, list(s.ProjectIds, project), list(s.ProjectGroupIds, group),
      list(s.EnvironmentIds, env), editable && button("Remove", async () => {
        await api("DELETE", "/api/scopeduserroles/" + s.Id);
        refresh();
      }, { "aria-label": "Remove the role " + (role[s.UserRoleId] || s.UserRoleId) })], s => ({ "data-role": role[s.UserRoleId] || s.UserRoleId }));
  }, id, "ScopedUserRoles-");
}

function addMember(t, people) {
  const pick = el("select", { required: true }, options(people.map(u => ({ Id: u.Id, Name: u.Username })), null, "Choose a user"));
  return form({ class: "inline", "aria-label": "Add a member" }, async (f) => {
    const fresh = await api("GET", "/api/teams/" + t.Id);
    fresh.MemberUserIds.push(pick.value);
    await api("PUT", "/api/teams/" + t.Id, fresh);
    f.reset();
    refresh();
  }, field("Add a member", pick), el("button", { type: "submit" }, "Add"));
}

function addRole(t, { roles, projects, groups, envs }) {
  const role = el("select", { required: true }, options(roles, null, "Choose a role"));
  const many = (list) => el("select", { multiple: true, size: String(Math.min(5, Math.max(2, list.length))) }, options(list));
  const projectIds = many(projects), groupIds = many(groups), envIds = many(envs);
  return form({ class: "stack", "aria-label": "Give the team a role" }, async (f) => {
    await api("POST", "/api/scopeduserroles", { UserRoleId: role.value, TeamId: t.Id, ProjectIds: selected(projectIds),
      ProjectGroupIds: selected(groupIds), EnvironmentIds: selected(envIds), TenantIds: [] });
    f.reset();
    refresh();
  }, el("h3", {}, "Give the team a role"), el("p", {}, "Limit it to projects, project groups and environments, or choose none for all."),
  field("Role", role), field("Projects", projectIds), field("Project groups", groupIds), field("Environments", envIds),
  el("button", { type: "submit" }, "Give the role"));
}

// Roles: every user role, linking to its permissions; a custom role is
// created and deleted with UserRoleEdit, the built-in ones are read-only.
export async function roles() {
  const { table, fill } = grid("User roles", ["Name", "Description", "Kind", ""]);
  const all = await api("GET", "/api/userroles/all");
  const perms = [...new Set(all.flatMap(r => r.GrantedSpacePermissions))].sort();
  show(el("h1", {}, "Roles"), configuration(), table, can("UserRoleEdit") && newRole(perms));
  await live(async () => {
    const list = await api("GET", "/api/userroles/all");
    fill(list, r => [el("a", { href: "#/configuration/roles/" + r.Id }, r.Name), r.Description || "", r.CanBeDeleted ? "custom" : "built in",
      r.CanBeDeleted && can("UserRoleEdit") && button("Delete", async () => {
        await api("DELETE", "/api/userroles/" + r.Id);
        refresh();
      }, { "aria-label": "Delete " + r.Name })], r => ({ "data-role": r.Name }));
  }, "UserRoles-");
}

// newRole makes the form that adds a role of some of perms.
function newRole(perms) {
  const name = el("input", { type: "text", required: true });
  const description = el("input", { type: "text" });
  const boxes = el("fieldset", { class: "permissions" }, el("legend", {}, "Space permissions"),
    perms.map(p => el("label", { class: "check" }, el("input", { type: "checkbox", value: p }), p)));
  return form({ class: "stack", "aria-label": "Add a role" }, async (f) => {
    const granted = Array.from(boxes.querySelectorAll("input:checked"), i => i.value);
    await api("POST", "/api/userroles", { Name: name.value, Description: description.value, GrantedSpacePermissions: granted, GrantedSystemPermissions: [] });
    f.reset();
    refresh();
  }, el("h2", {}, "Add a role"), field("Name", name), field("Description", description), boxes, el("button", { type: "submit" }, "Add"));
}

// A user role: its description and permissions.
export async function role(id) {
  const r = await api("GET", "/api/userroles/" + id);
  const list = (title, perms) => [el("h2", {}, title), perms.length ? el("ul", { class: "columns" }, perms.map(p => el("li", {}, p))) : el("p", {}, "None.")];
  show(el("h1", {}, r.Name), configuration(), el("p", {}, r.Description || "", r.CanBeDeleted ? "" : " (built in: read-only)"),
    list("System permissions", r.GrantedSystemPermissions), list("Space permissions", r.GrantedSpacePermissions));
}

// API keys: the signed-in user's keys; a new key is shown once.
export async function apiKeys() {
  const mine = "/api/users/" + me().Id + "/apikeys";
  const { table, fill } = grid("Your API keys", ["Purpose", "Key", "Created", ""]);
  const purpose = el("input", { type: "text", required: true });
  const created = el("div", { role: "status" });
  show(el("h1", {}, "API keys of " + me().DisplayName), table, form({ class: "stack", "aria-label": "Add an API key" }, async (f) => {
    const k = await api("POST", mine, { Purpose: purpose.value });
    f.reset();
    created.replaceChildren(el("p", {}, `The new key for “${k.Purpose}”: copy it now, it is not shown again.`),
      el("output", { class: "secret", "aria-label": "The new API key" }, k.ApiKey));
    refresh();
  }, el("h2", {}, "Add an API key"), field("Purpose", purpose), el("button", { type: "submit" }, "Add")), created);
  await live(async () => {
    const page = await api("GET", mine + "?take=1000");
    fill(page.Items, k => [k.Purpose, el("code", {}, k.ApiKey.Hint + "…"), when(k.Created), button("Delete", async () => {
      await api("DELETE", mine + "/" + k.Id);
      refresh();
    }, { "aria-label": "Delete the key for " + k.Purpose })], k => ({ "data-key": k.Purpose }));
  }, me().Id);
}

// Audit: the changes made through the API, newest first, thirty a page,
// filtered by user, document and time.
export async function audit() {
  const people = await api("GET", "/api/users/all");
  const who = el("select", {}, options(people.map(u => ({ Id: u.Id, Name: u.Username })), null, "anyone"));
  const doc = el("input", { type: "text", placeholder: "such as Projects-1" });
  const from = el("input", { type: "datetime-local" });
  const to = el("input", { type: "datetime-local" });
  const { table, fill } = grid("Events, newest first", ["When", "User", "Category", "Message", "Documents"]);
  const pages = el("p", { class: "pager" });
  let skip = 0;
  const take = 30;
  const shown = async () => {
    const q = new URLSearchParams({ skip: String(skip), take: String(take) });
    if (who.value) q.set("users", who.value);
    if (doc.value.trim()) q.set("regarding", doc.value.trim());
    if (from.value) q.set("from", new Date(from.value).toISOString().replace(/\.\d+Z$/, "Z"));
    if (to.value) q.set("to", new Date(to.value).toISOString().replace(/\.\d+Z$/, "Z"));
    const page = await api("GET", "/api/events?" + q);
    fill(page.Items, e => [when(e.Occurred), e.Username, e.Category, e.Message, (e.RelatedDocumentIds || []).join(", ")], e => ({ "data-event": e.Id }));
    const last = Math.max(0, Math.ceil(page.TotalResults / take) - 1);
    update(pages,
      button("Newer", () => turn(Math.max(0, skip - take)), { disabled: skip === 0 }),
      ` Page ${skip / take + 1} of ${last + 1} (${page.TotalResults} events) `,
      button("Older", () => turn(skip + take), { disabled: skip / take >= last }));
  };
  const turn = (at) => {
    skip = at;
    refresh();
  };
  show(el("h1", {}, "Audit"), configuration(),
    form({ class: "filters", "aria-label": "Filter the events" }, () => turn(0), field("User", who), field("Document", doc), field("From", from),
      field("To", to), el("button", { type: "submit" }, "Filter")), table, pages);
  await live(shown, "Events-");
}
