// Atelier: the one upload box takes whole folders. Gradio's own drop target does not walk dropped
// folders, so a drop on the box is taken here first: folders are walked with the directory-entry
// API (subfolder paths kept), then the files go to the box's own file input (Gradio uploads them,
// with its progress) and their paths to a hidden textbox. "Choose a folder…" does the same with
// a folder picker (each file's path inside the folder kept).
(function () {
  "use strict";
  const ZONE = "#atelier-files";
  const PATHS = "#atelier-relpaths textarea, #atelier-relpaths input";
  const STATUS = ".atelier-drop-status";
  let feeding = false;

  function readAll(reader) {              // readEntries returns batches of at most 100
    return new Promise((resolve, reject) => {
      const out = [];
      const next = () => reader.readEntries((batch) => {
        if (!batch.length) { resolve(out); return; }
        out.push(...batch); next();
      }, reject);
      next();
    });
  }

  async function walk(entry, prefix, out) {
    if (!entry) return;
    if (entry.isFile) {
      const file = await new Promise((res, rej) => entry.file(res, rej));
      out.push({ file: file, path: prefix + file.name });
    } else if (entry.isDirectory) {
      const children = await readAll(entry.createReader());
      for (const child of children) await walk(child, prefix + entry.name + "/", out);
    }
  }

  function visible(found) {
    return found.filter((x) => !x.path.split("/").some((p) => p.startsWith(".") || p === "__MACOSX"));
  }

  async function collect(dataTransfer) {
    const out = [];
    const items = Array.from(dataTransfer.items || []);
    const entries = items.map((it) => (it.webkitGetAsEntry ? it.webkitGetAsEntry() : null));
    if (entries.some((e) => e)) {
      for (let i = 0; i < entries.length; i++) {
        if (entries[i]) await walk(entries[i], "", out);
        else if (items[i].kind === "file") { const f = items[i].getAsFile(); if (f) out.push({ file: f, path: f.name }); }
      }
    } else {
      for (const f of Array.from(dataTransfer.files || [])) out.push({ file: f, path: f.name });
    }
    return visible(out);
  }

  function say(text) {
    const status = document.querySelector(STATUS);
    if (status) status.textContent = text;
  }

  function setPaths(value) {
    const paths = document.querySelector(PATHS);
    if (!paths) return;
    paths.value = value;
    paths.dispatchEvent(new Event("input", { bubbles: true }));
  }

  // The box's empty-state input (after an upload only an "add more" input is left: clear first,
  // so that a new drop replaces what was there).
  async function freshInput() {
    const zone = document.querySelector(ZONE);
    if (!zone) return null;
    const clear = zone.querySelector("button[aria-label='Clear']");
    if (clear) clear.click();
    for (let i = 0; i < 50; i++) {
      const input = zone.querySelector(".upload-container:not(.icon-mode) input[type=file]");
      if (input) return input;
      await new Promise((r) => setTimeout(r, 40));
    }
    return zone.querySelector("input[type=file]");
  }

  async function feed(found) {
    if (!found.length) { say("Nothing to upload there: drop a folder of images, a zip or a video."); return; }
    const input = await freshInput();
    if (!input) { say("The upload box is not ready yet: try again in a moment."); return; }
    const dt = new DataTransfer();
    found.forEach((x) => dt.items.add(x.file));
    setPaths(JSON.stringify(found.map((x) => ({ path: x.path, name: x.file.name, size: x.file.size }))));
    input.files = dt.files;
    feeding = true;
    try { input.dispatchEvent(new Event("change", { bubbles: true })); } finally { feeding = false; }
    say(`Uploading ${found.length.toLocaleString()} file${found.length === 1 ? "" : "s"}…`);
    const zone = document.querySelector(ZONE);
    const done = setInterval(() => {      // the box lists the files once they are up: its own view says it
      if (!zone || zone.querySelector(".file-preview")) { clearInterval(done); say(""); }
    }, 300);
  }

  function pickFolder() {
    const picker = document.createElement("input");
    picker.type = "file";
    picker.multiple = true;
    picker.webkitdirectory = true;
    picker.style.display = "none";
    document.body.appendChild(picker);
    picker.addEventListener("change", () => {
      const found = Array.from(picker.files || []).map((f) => ({ file: f, path: f.webkitRelativePath || f.name }));
      picker.remove();
      feed(visible(found));
    });
    picker.click();
  }

  const inZone = (e) => e.target && e.target.closest && e.target.closest(ZONE);
  document.addEventListener("dragover", (e) => {
    const zone = inZone(e);
    if (zone) { e.preventDefault(); zone.classList.add("over"); }
  }, true);
  document.addEventListener("dragleave", (e) => {
    const zone = inZone(e);
    if (zone) zone.classList.remove("over");
  }, true);
  document.addEventListener("drop", async (e) => {
    const zone = inZone(e);
    if (!zone) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    zone.classList.remove("over");
    say("Reading what was dropped…");
    try {
      await feed(await collect(e.dataTransfer));
    } catch (err) {
      say("The browser could not read that folder: use “Choose a folder…” instead.");
    }
  }, true);
  // Files picked with the box's own chooser have no folder paths: forget those of an earlier drop.
  document.addEventListener("change", (e) => {
    if (!feeding && inZone(e) && e.target.type === "file") { setPaths(""); say(""); }
  }, true);
  window.atelierDrop = { collect: collect, feed: feed, pickFolder: pickFolder };   // pickFolder: the button
})();
