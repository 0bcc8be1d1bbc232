// Finding images: by id or words of a title (GET /images?q=, a page at a time) and by a
// picture dropped on the page or chosen with the file button (POST /search).

import { api } from "./api.js";
import { matchNote } from "./panel.js";
import { byId, h, plural, say, thumb } from "./dom.js";

const PAGE = 20;

export function initFind({ onOpen, showResults }) {
  const form = byId("find");
  const input = byId("q");
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = input.value.trim();
    if (q) findByWords(q, onOpen, showResults);
  });
  const file = byId("picture");
  byId("pick").addEventListener("click", () => file.click());
  file.addEventListener("change", () => {
    if (file.files[0]) findByPicture(file.files[0], onOpen, showResults);
    file.value = "";
  });
  initDrop((picture) => findByPicture(picture, onOpen, showResults));
}

export async function findByWords(q, onOpen, showResults) {
  const list = h("ol", { class: "results" });
  const more = h("button", { type: "button", class: "more", hidden: true }, "More");
  const heading = h("h2", { id: "results-title", tabindex: -1 }, `Finding “${q}”…`);
  showResults(heading, list, more);
  let offset = 0;
  const page = async () => {
    more.disabled = true;
    try {
      const found = await api.findByTitle(q, offset, PAGE);
      heading.textContent = found.total ? `${plural(found.total, "title")} matching “${q}”`
        : found.image ? `Image ${found.image.id}` : `Nothing found for “${q}”`;
      if (offset === 0 && found.image) {
        // The query is an image's id: show that image at once.
        list.append(resultItem(found.image, onOpen, "this id"));
        onOpen(found.image.id);
      }
      for (const image of found.images) list.append(resultItem(image, onOpen));
      offset += found.images.length;
      more.hidden = found.next === null || found.next === undefined;
      say(`${plural(found.total, "image")} with these words in the title`);
    } catch (err) {
      heading.textContent = "Search failed";
      list.append(h("li", { class: "error", role: "alert" }, err.message));
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener("click", page);
  await page();
}

function resultItem(image, onOpen, note) {
  return h("li", {}, h("button", { type: "button", class: "result", "data-id": image.id,
    onclick: () => onOpen(image.id) },
    thumb(image, "sm"),
    h("span", { class: "result-text" },
      h("span", { class: "result-title" }, image.title || "Untitled"),
      h("span", { class: "muted" }, image.id, note ? ` · ${note}` : ""))));
}

export async function findByPicture(picture, onOpen, showResults) {
  const preview = URL.createObjectURL(picture);
  const heading = h("h2", { id: "results-title", tabindex: -1 }, "Images that look like your picture");
  const list = h("ol", { class: "results" });
  showResults(heading,
    h("figure", { class: "dropped" }, h("img", { src: preview, alt: `Your picture: ${picture.name}`,
      class: "thumb thumb-md" }), h("figcaption", { class: "muted" }, picture.name)),
    list);
  say("Searching by picture…");
  try {
    const found = await api.searchPicture(picture);
    const ranked = found.matches ?? bestPerImage(found.results);
    if (!ranked.length) list.append(h("li", { class: "muted" }, "No stored image is close."));
    for (const m of ranked) list.append(resultItem(m, onOpen, matchNote(m)));
    say(`${plural(ranked.length, "image")} look like your picture`);
  } catch (err) {
    list.append(h("li", { class: "error", role: "alert" }, err.message));
    say(err.message, "error");
  } finally {
    setTimeout(() => URL.revokeObjectURL(preview), 60_000);
  }
}

/** Without the server's one ranking: each image once, at its best distance over the kinds. */
function bestPerImage(results) {
  const best = new Map();
  for (const matches of Object.values(results || {})) {
    for (const m of matches) {
      const seen = best.get(m.id);
      if (!seen || (m.distance ?? 0) < (seen.distance ?? 0)) best.set(m.id, m);
    }
  }
  return [...best.values()].sort((a, b) => (a.distance ?? 0) - (b.distance ?? 0));
}

function initDrop(onPicture) {
  const overlay = byId("drop-overlay");
  let depth = 0;
  const hasFile = (e) => [...(e.dataTransfer?.types || [])].includes("Files");
  document.addEventListener("dragenter", (e) => {
    if (!hasFile(e)) return;
    depth += 1;
    overlay.hidden = false;
  });
  document.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) overlay.hidden = true;
  });
  document.addEventListener("dragover", (e) => { if (hasFile(e)) e.preventDefault(); });
  document.addEventListener("drop", (e) => {
    if (!hasFile(e)) return;
    e.preventDefault();
    depth = 0;
    overlay.hidden = true;
    const picture = [...e.dataTransfer.files].find((f) => f.type.startsWith("image/"));
    if (picture) onPicture(picture);
    else say("Drop a picture file (JPEG, PNG, …)", "error");
  });
}
