// A deployment's progress, and its interruptions answered in place.
"use strict";

import { api, el, put, update, live, refresh, act, button, field, badge, stateOf, can, when, SPACE, HASH } from "./core.js";

// A deployment: its state, its progress by step, target and action (the
// task's activity tree), each target's latest log lines, and its pending
// interruptions: a manual intervention (Proceed, Abort) or a guided
// failure (Fail, Retry, Ignore, Exclude), answered here after taking
// responsibility, with InterruptionSubmit.
export async function deployment(p, body, id) {
  const d = await api("GET", SPACE + "/deployments/" + id);
  const [r, env] = await Promise.all([api("GET", SPACE + "/releases/" + d.ReleaseId), api("GET", SPACE + "/environments/" + d.EnvironmentId)]);
  const status = el("p", { class: "status", role: "status" });
  const tree = el("div", { class: "activity" });
  const waits = el("div", { class: "interruptions" });
  const scope = { project: p.Id, projectGroup: p.ProjectGroupId, environment: env.Id };
  put(body, el("h2", {}, `Deploy release ${r.Version} to ${env.Name}`), status, waits, tree,
    el("p", {}, el("a", { href: HASH + "/tasks/" + d.TaskId }, "The task's whole log")));
  const shown = new Map(); // interruption id to {key, node}
  const open = new Set(); // paths of the activities whose log lines are open
  await live(async () => {
    const [details, pending] = await Promise.all([api("GET", "/api/tasks/" + d.TaskId + "/details?tail=20"),
      api("GET", SPACE + "/interruptions?take=100&pendingOnly=true&regarding=" + id)]);
    const t = details.Task;
    update(status, badge(stateOf(t)), " ",
      t.IsCompleted ? `ended ${when(t.CompletedTime)}${t.ErrorMessage ? ": " + t.ErrorMessage : ""}` : t.StartTime ? `started ${when(t.StartTime)}` : "queued");
    const root = details.ActivityLogs[0];
    update(tree, root && root.Children.length ? el("ol", { class: "steps" }, root.Children.map((a, i) => activity(a, String(i), open)))
      : el("p", {}, "No plan yet."));
    interruptions(pending.Items, shown, waits, scope);
  }, id, d.TaskId, "Interruptions-");
}

// activity shows the element of the activity tree at path, and its
// children; a target's latest log lines fold under it, open if their path
// is in open.
function activity(a, path, open) {
  const lines = a.LogElements || [];
  const time = (t) => new Date(t).toLocaleTimeString();
  return el("li", { "data-activity": a.Name },
    el("span", { class: "name" }, a.Name), " ", badge(a.Status || "Pending"),
    a.Started && el("span", { class: "times" }, ` ${time(a.Started)}${a.Ended ? " – " + time(a.Ended) : ""}`),
    a.Children && a.Children.length > 0 && el("ol", {}, a.Children.map((c, i) => activity(c, path + "/" + i, open))),
    lines.length > 0 && el("details", { open: open.has(path), ontoggle: (ev) => ev.target.open ? open.add(path) : open.delete(path) },
      el("summary", {}, `Its latest ${lines.length} log lines`),
      el("pre", { class: "log" }, lines.map(l => `${l.Category}  ${l.MessageText}`).join("\n"))));
}

// interruptions shows the pending ones, keeping (with what was typed in
// them) those that have not changed.
function interruptions(items, shown, holder, scope) {
  const keep = new Map();
  for (const i of items) {
    const key = [i.HasResponsibility, i.CanTakeResponsibility, i.ResponsibleUserId].join("/");
    const old = shown.get(i.Id);
    keep.set(i.Id, old && old.key === key ? old : { key, node: interruption(i, scope) });
  }
  shown.clear();
  keep.forEach((v, k) => shown.set(k, v));
  const nodes = [...keep.values()].map(v => v.node);
  if (nodes.length !== holder.children.length || nodes.some((n, i) => holder.children[i] !== n)) put(holder, nodes);
}

// interruption shows one: what it asks, and the way to answer it.
function interruption(i, scope) {
  const section = el("section", { class: "interruption", "data-interruption": i.Type, "aria-label": i.Title });
  put(section, el("h3", {}, (i.Type === "GuidedFailure" ? "⚠ A step failed: " : "Waiting for a person: ") + i.Title),
    !can("InterruptionSubmit", scope) ? el("p", {}, "You may not answer it.")
      : i.HasResponsibility ? answerForm(i)
        : i.CanTakeResponsibility ? button("Take responsibility", async () => {
          await api("PUT", i.Links.Responsible);
          refresh();
        })
          : el("p", {}, "Another person or team is responsible for it."));
  return section;
}

// answerForm makes the interruption's form: paragraphs, text areas, and
// buttons that submit (one that requires confirmation asks first).
function answerForm(i) {
  const values = {};
  const submit = (name, value) => act(async () => {
    const answer = { [name]: value };
    for (const [k, input] of Object.entries(values)) answer[k] = input.value;
    await api("POST", i.Links.Submit, answer);
    refresh();
  });
  return el("form", { class: "stack", "aria-label": "Answer " + i.Title, onsubmit: (ev) => ev.preventDefault() },
    i.Form.Elements.map(e => {
      const c = e.Control;
      switch (c.Type) {
      case "Paragraph":
        return el("p", { class: "instructions" }, c.Text);
      case "TextArea":
        values[e.Name] = el("textarea", { rows: "3", name: e.Name });
        return field(c.Label || e.Name, values[e.Name]);
      case "SubmitButtonGroup":
        return el("div", { class: "toolbar" }, c.Buttons.map(b => confirmable(b, () => submit(e.Name, b.Value))));
      default:
        return null;
      }
    }));
}

// confirmable makes a button for b; one that requires confirmation asks
// with a second button first.
function confirmable(b, go) {
  if (!b.RequiresConfirmation) return el("button", { type: "button", onclick: go, "data-answer": b.Value }, b.Text);
  const holder = el("span");
  const ask = el("button", { type: "button", "data-answer": b.Value, onclick: () => {
    const sure = el("button", { type: "button", onclick: go, "data-confirm": b.Value }, `Yes, ${b.Text.toLowerCase()}`);
    holder.replaceChildren(`${b.Text}: are you sure? `, sure, " ", el("button", { type: "button", onclick: () => holder.replaceChildren(ask) }, "No"));
    sure.focus();
  } }, b.Text);
  holder.append(ask);
  return holder;
}
