// Atelier: a drop zone that takes whole folders. Gradio's own drop target does not walk dropped
// folders, so this walks them with the directory-entry API (keeping subfolder paths), then hands
// the files to the page's multi-file gr.File input and the paths to a hidden textbox.
(function () {
  "use strict";
  const ZONE = ".atelier-drop";
  const FILES = "#atelier-files input[type=file]";
  const PATHS = "#atelier-relpaths textarea, #atelier-relpaths input";
  const PICKER = "#atelier-folder input[type=file]";

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
    return out.filter((x) => !x.path.split("/").some((p) => p.startsWith(".") || p === "__MACOSX"));
  }

  function say(zone, text) {
    const status = zone.querySelector(".atelier-drop-status");
    if (status) status.textContent = text;
  }

  function feed(zone, found) {
    const input = document.querySelector(FILES);
    if (!input) { say(zone, "The upload box is busy: clear it (×) and drop again."); return; }
    const dt = new DataTransfer();
    found.forEach((x) => dt.items.add(x.file));
    const paths = document.querySelector(PATHS);
    if (paths) {
      paths.value = JSON.stringify(found.map((x) => ({ path: x.path, name: x.file.name, size: x.file.size })));
      paths.dispatchEvent(new Event("input", { bubbles: true }));
    }
    input.files = dt.files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    say(zone, `Uploading ${found.length.toLocaleString()} file${found.length === 1 ? "" : "s"}… (progress in the box below)`);
  }

  document.addEventListener("dragover", (e) => {
    const zone = e.target.closest && e.target.closest(ZONE);
    if (!zone) return;
    e.preventDefault();
    zone.classList.add("over");
  });
  document.addEventListener("dragleave", (e) => {
    const zone = e.target.closest && e.target.closest(ZONE);
    if (zone) zone.classList.remove("over");
  });
  document.addEventListener("drop", async (e) => {
    const zone = e.target.closest && e.target.closest(ZONE);
    if (!zone) return;
    e.preventDefault();
    zone.classList.remove("over");
    say(zone, "Reading the folder…");
    try {
      const found = await collect(e.dataTransfer);
      if (!found.length) { say(zone, "Nothing to upload there: drop a folder of images, a zip or a video."); return; }
      feed(zone, found);
    } catch (err) {
      say(zone, "The browser could not read that folder: use “Pick a folder” instead.");
    }
  });
  function openPicker(e) {
    const zone = e.target.closest && e.target.closest(ZONE);
    if (!zone) return;
    if (e.type === "keydown" && e.key !== "Enter" && e.key !== " ") return;
    e.preventDefault();
    const picker = document.querySelector(PICKER);
    if (picker) picker.click();
  }
  document.addEventListener("click", openPicker);
  document.addEventListener("keydown", openPicker);
  window.atelierDrop = { collect: collect, feed: feed };   // for tests
})();
