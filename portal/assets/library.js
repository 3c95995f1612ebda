// Library → Packages: the built-in feed.
"use strict";

import { api, el, show, grid, live, refresh, field, form, can, say, upload, when, bytes, SPACE, HASH } from "./core.js";

// Packages: each package at its highest version, linking to its versions,
// and (with BuiltInFeedPush) an upload with a progress bar.
export async function packages() {
  const { table, fill } = grid("Packages of the built-in feed, each at its highest version", ["Package", "Latest version", "Published", "Size"]);
  show(el("h1", {}, "Packages"), table, can("BuiltInFeedPush") && uploadForm());
  await live(async () => {
    const page = await api("GET", SPACE + "/packages?take=1000");
    fill(page.Items, p => [el("a", { href: HASH + "/library/packages/" + encodeURIComponent(p.PackageId) }, p.PackageId),
      p.Version, when(p.Published), bytes(p.PackageSizeBytes)], p => ({ "data-package": p.PackageId }));
  }, "packages-");
}

// uploadForm makes the form that uploads a package file.
function uploadForm() {
  const file = el("input", { type: "file", name: "file", required: true });
  const mode = el("select", { name: "overwriteMode" },
    [["FailIfExists", "Refuse a version the feed has"], ["OverwriteExisting", "Replace it"], ["IgnoreIfExists", "Keep the one the feed has"]]
      .map(([v, t]) => el("option", { value: v }, t)));
  const bar = el("progress", { max: "100", value: "0", "aria-label": "Upload progress" });
  const percent = el("span", { class: "percent" }, "");
  return form({ class: "stack", "aria-label": "Upload a package" }, async (f) => {
    const chosen = file.files[0];
    const progress = (fraction) => {
      bar.value = Math.round(fraction * 100);
      percent.textContent = bar.value + "%";
    };
    progress(0);
    const p = await upload(SPACE + "/packages/raw?overwriteMode=" + mode.value, chosen, progress);
    progress(1);
    say(`Uploaded ${p.PackageId} ${p.Version} (${bytes(p.PackageSizeBytes)}).`);
    f.reset();
    refresh();
  }, el("h2", {}, "Upload a package"),
  el("p", {}, "The file's name gives the package and its version, such as app.1.0.0.zip or app.1.0.0.tar.gz."),
  field("Package file", file), field("If the version exists", mode),
  el("div", { class: "progress" }, bar, percent), el("button", { type: "submit" }, "Upload"));
}

// A package's versions, highest first, each downloadable with
// BuiltInFeedDownload.
export async function packageVersions(id) {
  const { table, fill } = grid("Versions, highest first", ["Version", "Published", "Size", "SHA-256", ""]);
  show(el("h1", {}, id), el("p", {}, el("a", { href: HASH + "/library/packages" }, "All packages")), table);
  await live(async () => {
    const page = await api("GET", SPACE + "/packages?take=1000&nuGetPackageId=" + encodeURIComponent(id));
    fill(page.Items, p => [p.Version, when(p.Published), bytes(p.PackageSizeBytes), el("code", {}, p.Hash),
      can("BuiltInFeedDownload") && el("a", { href: p.Links.Raw, download: "" }, "Download")], p => ({ "data-version": p.Version }));
  }, "packages-");
}
