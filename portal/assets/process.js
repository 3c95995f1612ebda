// A project's deployment process, edited in place.
"use strict";

import { api, el, put, live, button, field, can, say, SPACE } from "./core.js";

const SCRIPT = "Octopus.Script";
const MANUAL = "Octopus.Manual";
const PACKAGE = "Octopus.TentaclePackage";
const kinds = { [SCRIPT]: "Run a script", [MANUAL]: "Manual intervention", [PACKAGE]: "Deploy a package" };
const conditions = [["Success", "Only when the previous steps succeeded"], ["Failure", "Only when a previous step failed"],
  ["Always", "Always"], ["Variable", "When a variable expression is true"]];

// The process editor: the project's steps, each with its target roles,
// rolling window, start and run condition, and its actions: the first the
// step's own, the others its child steps, run in order on each target. A
// script that runs on the server in a step with targets is a server-side
// hook, run once per target before (first) or after (last) the target's
// own actions (in a rolling step, one window of targets at a time). Manual
// interventions carry instructions and responsible teams. Editable with
// ProcessEdit; saved whole (PUT), each save a new version.
export async function processEditor(p, body) {
  const path = SPACE + "/projects/" + p.Id + "/deploymentprocesses";
  const teams = await api("GET", "/api/teams/all");
  const editable = can("ProcessEdit", { project: p.Id, projectGroup: p.ProjectGroupId });
  const steps = el("fieldset", { class: "bare", disabled: !editable });
  const version = el("p");
  const state = { process: null, dirty: false };
  // load shows the stored process: one that changed, or with force any.
  const load = async (force) => {
    const stored = await api("GET", path);
    if (!force && state.process && stored.Version === state.process.Version) return;
    state.process = stored;
    state.dirty = false;
    draw();
  };
  const stamp = () => {
    version.textContent = `Version ${state.process.Version}${state.dirty ? ", changed: save to keep the changes" : ""}.`;
  };
  // draw shows the process; focus, a selector, picks what takes the focus.
  const draw = (focus) => {
    stamp();
    put(steps, state.process.Steps.length ? state.process.Steps.map((s, i) => stepEditor(s, i, ctx)) : el("p", {}, "No steps yet."));
    if (focus) steps.querySelector(focus)?.focus();
  };
  const ctx = { teams, editable, process: () => state.process, changed: (focus) => {
    state.dirty = true;
    if (focus !== undefined) draw(focus);
    else stamp();
  } };
  const add = (type) => {
    const name = uniqueName(state.process, kinds[type]);
    state.process.Steps.push(newStep(name, newAction(name, type)));
    ctx.changed(`[data-step="${state.process.Steps.length - 1}"] input`);
  };
  put(body, el("h2", {}, "Process"), version, steps, editable && [
    el("div", { class: "toolbar" }, button("Add a script step", () => add(SCRIPT)), button("Add a manual intervention", () => add(MANUAL)),
      button("Add a package step", () => add(PACKAGE))),
    el("div", { class: "toolbar" }, button("Save", async () => {
      state.process = await api("PUT", path, state.process);
      state.dirty = false;
      draw();
      say(`Saved: version ${state.process.Version}.`);
    }, { class: "primary" }), button("Discard the changes", () => load(true)))]);
  // Another's save shows at once, unless this page has changes of its own.
  await live(() => state.dirty ? null : load(), p.Id, p.DeploymentProcessId);
}

// uniqueName answers base, or base with a number, unused by the process's
// steps and actions.
function uniqueName(process, base) {
  const used = new Set(process.Steps.flatMap(s => [s.Name, ...s.Actions.map(a => a.Name)]).map(n => n.toLowerCase()));
  let name = base;
  for (let n = 2; used.has(name.toLowerCase()); n++) name = `${base} ${n}`;
  return name;
}

function newStep(name, action) {
  return { Name: name, Condition: "Success", StartTrigger: "StartAfterPrevious", PackageRequirement: "LetOctopusDecide", Properties: {}, Actions: [action] };
}

function newAction(name, type, onServer) {
  const props = {
    [SCRIPT]: { "Octopus.Action.Script.ScriptSource": "Inline", "Octopus.Action.Script.Syntax": "Bash", "Octopus.Action.Script.ScriptBody": "",
      "Octopus.Action.RunOnServer": onServer ? "True" : "False" },
    [MANUAL]: { "Octopus.Action.Manual.Instructions": "", "Octopus.Action.Manual.ResponsibleTeamIds": "", "Octopus.Action.Manual.BlockConcurrentDeployments": "False" },
    [PACKAGE]: { "Octopus.Action.Package.PackageId": "", "Octopus.Action.Package.FeedId": "feeds-builtin", "Octopus.Action.Package.DownloadOnTentacle": "False" },
  }[type];
  return { Name: name, ActionType: type, IsDisabled: false, IsRequired: false, Environments: [], ExcludedEnvironments: [], Channels: [],
    TenantTags: [], Packages: [], Properties: props };
}

// prop answers a property's text ("" for none or a sensitive one).
function prop(props, name) {
  return typeof props[name] === "string" ? props[name] : "";
}

// setProp sets a property, or with "" removes it.
function setProp(props, name, value) {
  if (value === "") delete props[name];
  else props[name] = value;
}

// text binds a text input (or textarea, with rows) to get and set.
function text(label, get, set, ctx, attrs) {
  const input = el(attrs && attrs.rows ? "textarea" : "input", Object.assign({ type: attrs && attrs.rows ? null : "text" }, attrs));
  input.value = get();
  input.addEventListener("input", () => {
    set(input.value);
    ctx.changed();
  });
  return field(label, input);
}

// check binds a checkbox (with attrs) to get and set.
function check(label, get, set, ctx, attrs) {
  const input = el("input", Object.assign({ type: "checkbox", checked: get() }, attrs));
  input.addEventListener("change", () => {
    set(input.checked);
    ctx.changed();
  });
  return el("label", { class: "check" }, input, label);
}

// choice binds a select of [value, text] pairs to get and set; then runs
// after a change.
function choice(label, pairs, get, set, ctx, redraw) {
  const select = el("select", { "data-field": label }, pairs.map(([v, t]) => el("option", { value: v, selected: v === get() }, t)));
  select.addEventListener("change", () => {
    set(select.value);
    ctx.changed(redraw);
  });
  return field(label, select);
}

// move moves list's item i by delta, answering whether it could.
function move(list, i, delta) {
  const j = i + delta;
  if (j < 0 || j >= list.length) return false;
  [list[i], list[j]] = [list[j], list[i]];
  return true;
}

function stepEditor(s, i, ctx) {
  const steps = ctx.process().Steps;
  const at = `[data-step="${i}"]`;
  const hook = (first) => {
    const a = newAction(uniqueName(ctx.process(), first ? "Before each target" : "After each target"), SCRIPT, true);
    if (first) s.Actions.unshift(a);
    else s.Actions.push(a);
    ctx.changed(`${at} [data-action="${first ? 0 : s.Actions.length - 1}"] input`);
  };
  return el("fieldset", { class: "step", "data-step": String(i) },
    el("legend", {}, `Step ${i + 1}: ${s.Name}`),
    text("Name", () => s.Name, (v) => {
      if (s.Actions[0] && s.Actions[0].Name === s.Name) s.Actions[0].Name = v;
      s.Name = v;
    }, ctx, { required: true, name: "stepName" }),
    text("Target roles (comma-separated; none when every action runs on the server)", () => prop(s.Properties, "Octopus.Action.TargetRoles"),
      (v) => setProp(s.Properties, "Octopus.Action.TargetRoles", v.split(",").map(r => r.trim()).filter(Boolean).join(",")), ctx, { name: "targetRoles" }),
    text("Rolling window: targets at once (empty: all at once)", () => prop(s.Properties, "Octopus.Action.MaxParallelism"),
      (v) => setProp(s.Properties, "Octopus.Action.MaxParallelism", v.trim()), ctx, { name: "window", inputmode: "numeric" }),
    i > 0 && choice("Start", [["StartAfterPrevious", "After the previous step"], ["StartWithPrevious", "With the previous step"]],
      () => s.StartTrigger, (v) => { s.StartTrigger = v; }, ctx),
    choice("Run condition", conditions, () => s.Condition, (v) => { s.Condition = v; }, ctx, `${at} select[data-field="Run condition"]`),
    s.Condition === "Variable" && text("Variable expression (such as #{RunThis})", () => prop(s.Properties, "Octopus.Action.ConditionVariableExpression"),
      (v) => setProp(s.Properties, "Octopus.Action.ConditionVariableExpression", v), ctx, { required: true }),
    s.Actions.map((a, j) => actionEditor(s, a, j, at, ctx)),
    ctx.editable && el("div", { class: "toolbar" },
      button("Add a child script step", () => {
        s.Actions.push(newAction(uniqueName(ctx.process(), "Child script"), SCRIPT));
        ctx.changed(`${at} [data-action="${s.Actions.length - 1}"] input`);
      }),
      button("Add a server-side hook before each target", () => hook(true)),
      button("Add a server-side hook after each target", () => hook(false)),
      button("Move the step up", () => move(steps, i, -1) && ctx.changed(`[data-step="${i - 1}"] input`), { disabled: i === 0 }),
      button("Move the step down", () => move(steps, i, 1) && ctx.changed(`[data-step="${i + 1}"] input`), { disabled: i === steps.length - 1 }),
      button("Remove the step", () => {
        steps.splice(i, 1);
        ctx.changed("");
      })));
}

function actionEditor(s, a, j, at, ctx) {
  const here = `${at} [data-action="${j}"]`;
  const onServer = prop(a.Properties, "Octopus.Action.RunOnServer").toLowerCase() === "true";
  const title = j === 0 ? "Action" : `Child step ${j}${onServer ? ": a server-side hook" : ""}`;
  return el("fieldset", { class: "action", "data-action": String(j) },
    el("legend", {}, `${title} — ${kinds[a.ActionType] || a.ActionType}`),
    text("Action name", () => a.Name, (v) => { a.Name = v; }, ctx, { required: true, name: "actionName" }),
    el("div", { class: "checks" },
      check("Disabled", () => a.IsDisabled, (v) => { a.IsDisabled = v; }, ctx),
      check("Required (never skipped, ignored or excluded)", () => a.IsRequired, (v) => { a.IsRequired = v; }, ctx)),
    a.ActionType === SCRIPT && scriptFields(a, here, ctx),
    a.ActionType === MANUAL && manualFields(a, ctx),
    a.ActionType === PACKAGE && text("Package id (from the built-in feed)", () => prop(a.Properties, "Octopus.Action.Package.PackageId"), (v) => {
      setProp(a.Properties, "Octopus.Action.Package.PackageId", v.trim());
      a.Packages = v.trim() ? [{ Name: "", PackageId: v.trim(), FeedId: "feeds-builtin", AcquisitionLocation: "Server", Properties: {} }] : [];
    }, ctx, { required: true }),
    ctx.editable && s.Actions.length > 1 && el("div", { class: "toolbar" },
      button("Move up", () => move(s.Actions, j, -1) && ctx.changed(`${at} [data-action="${j - 1}"] input`), { disabled: j === 0 }),
      button("Move down", () => move(s.Actions, j, 1) && ctx.changed(`${at} [data-action="${j + 1}"] input`), { disabled: j === s.Actions.length - 1 }),
      button("Remove", () => {
        s.Actions.splice(j, 1);
        ctx.changed(`${at} input`);
      }, { "aria-label": "Remove " + a.Name })));
}

function scriptFields(a, here, ctx) {
  const p = a.Properties;
  return [
    choice("Syntax", [["Bash", "Bash"], ["PowerShell", "PowerShell"]], () => prop(p, "Octopus.Action.Script.Syntax") || "Bash",
      (v) => { p["Octopus.Action.Script.Syntax"] = v; }, ctx),
    check("Run on the server (not on the targets)", () => prop(p, "Octopus.Action.RunOnServer").toLowerCase() === "true",
      (v) => { p["Octopus.Action.RunOnServer"] = v ? "True" : "False"; }, ctx, { name: "runOnServer" }),
    text("Script", () => prop(p, "Octopus.Action.Script.ScriptBody"), (v) => { p["Octopus.Action.Script.ScriptBody"] = v; }, ctx,
      { rows: "6", class: "code", spellcheck: "false", required: true, name: "scriptBody" }),
  ];
}

function manualFields(a, ctx) {
  const p = a.Properties;
  const teamIds = () => prop(p, "Octopus.Action.Manual.ResponsibleTeamIds").split(",").filter(Boolean);
  return [
    text("Instructions", () => prop(p, "Octopus.Action.Manual.Instructions"), (v) => { p["Octopus.Action.Manual.Instructions"] = v; }, ctx, { rows: "3", name: "instructions" }),
    el("fieldset", { class: "checks" }, el("legend", {}, "Responsible teams (none: anyone may answer)"),
      ctx.teams.map(t => check(t.Name, () => teamIds().includes(t.Id), (on) => {
        const ids = teamIds().filter(x => x !== t.Id);
        if (on) ids.push(t.Id);
        p["Octopus.Action.Manual.ResponsibleTeamIds"] = ids.join(",");
      }, ctx))),
    check("Block other deployments while it waits", () => prop(p, "Octopus.Action.Manual.BlockConcurrentDeployments").toLowerCase() === "true",
      (v) => { p["Octopus.Action.Manual.BlockConcurrentDeployments"] = v ? "True" : "False"; }, ctx),
  ];
}
