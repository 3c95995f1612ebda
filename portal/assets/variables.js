// A project's variables, edited in place.
"use strict";

import { api, el, put, live, button, can, say, options, selected, SPACE } from "./core.js";

// The variables editor: each variable's name, value, sensitivity and
// environments. The API never answers a sensitive value: it shows masked,
// and is sent only when replaced (an empty one keeps the stored secret).
// Editable with VariableEdit; saved whole (PUT).
export async function variablesEditor(p, body) {
  const path = SPACE + "/projects/" + p.Id + "/variables";
  const envs = await api("GET", SPACE + "/environments/all");
  const editable = can("VariableEdit", { project: p.Id, projectGroup: p.ProjectGroupId });
  const rows = el("tbody");
  const state = { set: null, dirty: false };
  const changed = () => {
    state.dirty = true;
    say("Changed: save to keep the changes.");
  };
  const draw = (focus) => {
    put(rows, state.set.Variables.map((v, i) => variableRow(v, i, { envs, changed, redraw: draw, list: state.set.Variables })));
    if (!state.set.Variables.length) rows.append(el("tr", {}, el("td", { colspan: "5" }, "No variables yet.")));
    if (focus) rows.querySelector(focus)?.focus();
  };
  // load shows the stored variables: one that changed, or with force any.
  const load = async (force) => {
    const stored = await api("GET", path);
    if (!force && state.set && stored.Version === state.set.Version) return;
    state.set = stored;
    state.dirty = false;
    draw();
  };
  put(body, el("h2", {}, "Variables"),
    el("fieldset", { class: "bare", disabled: !editable }, el("table", { class: "variables" }, el("caption", {}, "The project's variables"),
      el("thead", {}, el("tr", {}, ["Name", "Value", "Sensitive", "Environments", ""].map(h => el("th", { scope: "col" }, h)))), rows)),
    editable && el("div", { class: "toolbar" },
      button("Add a variable", () => {
        state.set.Variables.push({ Name: "", Value: "", Type: "String", IsSensitive: false, IsEditable: true, Description: "", Scope: {}, Prompt: null });
        changed();
        draw(`[data-variable="${state.set.Variables.length - 1}"] input`);
      }),
      button("Save", async () => {
        state.set = await api("PUT", path, state.set);
        state.dirty = false;
        draw();
        say(`Saved: version ${state.set.Version}.`);
      }, { class: "primary" }),
      button("Discard the changes", () => load(true))));
  await live(() => state.dirty ? null : load(), p.Id, p.VariableSetId);
}

function sensitive(v) {
  return v.IsSensitive || v.Type === "Sensitive";
}

function variableRow(v, i, { envs, changed, redraw, list }) {
  const n = i + 1;
  const name = el("input", { type: "text", value: v.Name, required: true, "aria-label": `Name of variable ${n}` });
  name.addEventListener("input", () => {
    v.Name = name.value;
    changed();
  });
  const value = sensitive(v)
    ? el("input", { type: "password", autocomplete: "off", "aria-label": `New value of ${v.Name || "variable " + n} (sensitive)`,
      placeholder: v.Id ? "•••••••• (kept; type to replace)" : "the secret" })
    : el("input", { type: "text", value: v.Value ?? "", "aria-label": `Value of ${v.Name || "variable " + n}` });
  value.addEventListener("input", () => {
    v.Value = sensitive(v) ? value.value || null : value.value;
    changed();
  });
  const secret = el("input", { type: "checkbox", checked: sensitive(v), "aria-label": `${v.Name || "Variable " + n} is sensitive` });
  secret.addEventListener("change", () => {
    v.Type = secret.checked ? "Sensitive" : "String";
    v.IsSensitive = secret.checked;
    v.Value = secret.checked ? (v.Value || null) : "";
    changed();
    redraw(`[data-variable="${i}"] input[type=checkbox]`);
  });
  const scope = el("select", { multiple: true, size: String(Math.min(4, Math.max(2, envs.length))), "aria-label": `Environments of ${v.Name || "variable " + n} (none: all)` },
    options(envs.map(e => ({ Id: e.Id, Name: e.Name }))));
  for (const o of scope.options) o.selected = ((v.Scope && v.Scope.Environment) || []).includes(o.value);
  scope.addEventListener("change", () => {
    v.Scope = Object.assign({}, v.Scope, { Environment: selected(scope) });
    changed();
  });
  return el("tr", { "data-variable": String(i), "data-name": v.Name },
    el("td", { "data-label": "Name" }, name),
    el("td", { "data-label": "Value" }, value, sensitive(v) && v.Id && el("span", { class: "masked" }, " set, hidden")),
    el("td", { "data-label": "Sensitive" }, secret),
    el("td", { "data-label": "Environments" }, scope),
    el("td", {}, button("Remove", () => {
      list.splice(i, 1);
      changed();
      redraw(`[data-variable="${Math.max(0, i - 1)}"] input`);
    }, { "aria-label": `Remove ${v.Name || "variable " + n}` })));
}
