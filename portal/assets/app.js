// cuttle's portal: hash routes, as Octopus's portal has them, over the
// API, signed in with a session cookie.
"use strict";

import { api, el, show, field, form, report, leave, signedIn, signedOut, HASH } from "./core.js";
import { dashboard } from "./dashboard.js";
import { nodes, cluster, tasks, task } from "./system.js";
import { environments, targets } from "./infrastructure.js";
import { projects, project, releaseById, deploymentById } from "./projects.js";
import { packages, packageVersions } from "./library.js";
import { users, user, teams, team, roles, role, apiKeys, audit } from "./people.js";

// Sign in: a username and a password; then the dashboard.
function signIn() {
  signedOut();
  header(null);
  const username = el("input", { type: "text", name: "username", autocomplete: "username", required: true });
  const password = el("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const remember = el("input", { type: "checkbox", name: "remember" });
  show(form({ class: "signin" }, async () => {
    await api("POST", "/api/users/login", { Username: username.value, Password: password.value, RememberMe: remember.checked });
    await signedIn();
    location.hash = HASH + "/dashboard";
  }, el("h1", {}, "Sign in"), field("Username", username), field("Password", password),
  el("label", { class: "check" }, remember, "Remember me"), el("button", { type: "submit" }, "Sign in")));
  username.focus();
}

// The routes: a hash's pattern and its page, which takes the pattern's
// groups. Hashes of Octopus's portal (#/Spaces-1/projects/Projects-1, as
// the official CLI prints them) and the portal's older ones both work.
const S = "#/(?:Spaces-1/)?";
const routes = [
  ["#/signin", signIn],
  ["#/(?:Spaces-1)?/?", dashboard],
  [S + "dashboard", dashboard],
  ["#/configuration/nodes", nodes],
  ["#/configuration/cluster", cluster],
  ["#/configuration/users", users],
  ["#/configuration/users/(Users-\\d+)", user],
  ["#/configuration/teams", teams],
  ["#/configuration/teams/(Teams-\\d+)", team],
  ["#/configuration/roles", roles],
  ["#/configuration/roles/(UserRoles-\\d+)", role],
  ["#/configuration/audit", audit],
  ["#/users/me/apiKeys", apiKeys],
  [S + "tasks", tasks],
  [S + "tasks/(ServerTasks-\\d+)", task],
  [S + "infrastructure/machines", targets],
  [S + "infrastructure/environments", environments],
  [S + "projects", projects],
  [S + "projects/([^/]+)(?:/(.+))?", project],
  [S + "releases/(Releases-\\d+)", releaseById],
  [S + "deployments/(Deployments-\\d+)", deploymentById],
  [S + "library/packages", packages],
  [S + "library/packages/([^/]+)", (id) => packageVersions(decodeURIComponent(id))],
].map(([pattern, page]) => [new RegExp("^" + pattern + "$"), page]);

// header shows the navigation to a signed-in user s, and marks the
// section of the hash shown.
function header(s) {
  const nav = document.getElementById("nav");
  nav.hidden = !s;
  if (!s) return;
  const mine = document.getElementById("me");
  mine.textContent = s.me.DisplayName;
  mine.setAttribute("aria-label", `Your API keys (${s.me.DisplayName})`);
  for (const a of nav.querySelectorAll("a[data-section]")) {
    const current = a.dataset.section.split(" ").some(p => location.hash.startsWith(p));
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

// route shows the page of the hash, after the page before has loaded (so
// that it never writes over this one); a hash changed again meanwhile is
// skipped for the newer one.
let routing = Promise.resolve();

function route() {
  const hash = location.hash || "#/";
  routing = routing.then(() => (location.hash || "#/") === hash && open(hash));
}

// open shows the page of hash (the dashboard for an unknown one).
async function open(hash) {
  leave();
  let page = dashboard, args = [];
  for (const [re, p] of routes) {
    const m = hash.match(re);
    if (m) {
      page = p;
      args = m.slice(1);
      break;
    }
  }
  if (page === signIn) return signIn();
  try {
    header(await signedIn());
    show(el("p", { class: "loading" }, "Loading…"));
    await page(...args);
  } catch (err) {
    report(err);
  }
  const view = document.getElementById("view");
  if (!view.contains(document.activeElement)) view.focus({ preventScroll: true });
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
