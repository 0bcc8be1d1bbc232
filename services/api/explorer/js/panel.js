// The panel of one image: what the catalogue says about it, its hashes, its near-duplicates
// and (where the server has them) its learned lookalikes, with the actions that start from it.

import { api, capabilities } from "./api.js";
import { communityColor } from "./graph.js";
import { fmtTime, h, put, thumb } from "./dom.js";

let shown = 0; // answers for an image no longer shown are dropped

/** Fill ``el`` with the panel of image ``id``. ``actions``: {centre, expand, pathFrom,
 * pathTo, open} callbacks (expand only where a drawing is shown). */
export async function showPanel(el, id, actions) {
  const ticket = ++shown;
  put(el, h("p", { class: "muted" }, `Loading ${id}…`));
  let image;
  try {
    image = await api.image(id);
  } catch (err) {
    if (ticket === shown) put(el, h("p", { class: "error", role: "alert" }, err.message));
    return;
  }
  if (ticket !== shown) return;
  const analysis = image.analysis || {};
  const colour = communityColor(analysis.community);
  const button = (text, fn, key) => fn && h("button", { type: "button", onclick: () => fn(id),
    "aria-keyshortcuts": key }, text);
  const rows = [
    ["Id", h("code", {}, image.id)],
    ["Licence", image.license || "not stated"],
    ["In the catalogue", image.work_url
      ? h("a", { href: image.work_url, target: "_blank", rel: "noopener noreferrer" },
        image.source_id ? `work ${image.source_id}` : "open")
      : (image.source_id || "—")],
    ["Similar images", `lists ${image.out_degree ?? "?"}, listed by ${image.in_degree ?? "?"}`],
    analysis.community !== undefined && ["Community", h("span", {},
      h("span", { class: "swatch-dot", style: `background:${colour}` }),
      ` ${analysis.community}`, analysis.pagerank !== undefined
        ? ` · PageRank ${Number(analysis.pagerank).toPrecision(3)}` : "")],
    image.dup_group && ["Near-duplicate group",
      `${image.dup_group_size || "?"} images (group ${image.dup_group})`],
    ["Fetched", fmtTime(image.crawl?.fetched_at) || "not fetched (listed by another image)"],
    image.crawl?.hash_error && ["Hashing failed", image.crawl.hash_error],
    image.crawl?.embed_error && ["Embedding failed", image.crawl.embed_error],
  ].filter(Boolean);
  const hashes = Object.entries(image.hashes || {}).filter(([, v]) => v);
  const duplicates = h("section", { "aria-label": "Near-duplicates" });
  const lookalikes = h("section", { "aria-label": "Lookalikes", hidden: true });
  put(el,
    h("h2", { id: "panel-title" }, image.title || "Untitled"),
    thumb(image, "lg"),
    h("div", { class: "actions" },
      button("Centre here", actions.centre, "C"), button("Expand", actions.expand, "E"),
      button("Path from here", actions.pathFrom), button("Path to here", actions.pathTo)),
    h("dl", { class: "facts" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    hashes.length
      ? h("details", { class: "hashes" }, h("summary", {}, "Perceptual hashes"),
        h("dl", {}, hashes.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, h("code", {}, v))])))
      : h("p", { class: "muted" }, "Not hashed yet."),
    duplicates, lookalikes);
  if (image.hashes?.phash) fillDuplicates(duplicates, id, ticket, actions.open);
  // Only images the crawl embedded have lookalikes: others would get a 409 (no vector).
  if (!image.crawl?.embed_model) return;
  const caps = await capabilities();
  if (ticket === shown && caps.has("/images/{id}/lookalikes")) {
    fillLookalikes(lookalikes, id, ticket, actions.open);
  }
}

async function fillDuplicates(el, id, ticket, open) {
  put(el, h("h3", {}, "Near-duplicates"), h("p", { class: "muted" }, "Looking…"));
  try {
    const found = await api.duplicates(id);
    if (ticket !== shown) return;
    // Verified copies (the ranking's ``match``); a server without the verifier: close hashes.
    const near = found.matches.filter((m) => m.match ?? (m.distance !== null && m.distance <= 10));
    put(el, h("h3", {}, "Near-duplicates"), near.length
      ? strip(near.map((m) => ({ ...m, note: matchNote(m) })), open)
      : h("p", { class: "muted" }, "No verified near-duplicate."));
  } catch (err) {
    if (ticket === shown) put(el, h("h3", {}, "Near-duplicates"), h("p", { class: "error" }, err.message));
  }
}

async function fillLookalikes(el, id, ticket, open) {
  el.hidden = false;
  put(el, h("h3", {}, "Lookalikes"), h("p", { class: "muted" }, "Looking…"));
  try {
    // {id, k, refined, model, generation, lookalikes: [{id, score, refined, title, ...}]}:
    // the nearest by the learned embedding's cosine, best first.
    const found = await api.lookalikes(id);
    if (ticket !== shown) return;
    put(el, h("h3", { title: `embedding model ${found.model}` }, "Lookalikes"),
      found.lookalikes.length
        ? strip(found.lookalikes.map((m) => ({ ...m, note: `cosine ${m.score.toFixed(2)}` })),
          open)
        : h("p", { class: "muted" }, "No other image is embedded yet."));
  } catch (err) {
    // 409: no vector yet (not indexed, or its embedding failed): the API says which.
    if (ticket === shown) {
      put(el, h("h3", {}, "Lookalikes"),
        h("p", { class: err.status === 409 ? "muted" : "error" }, err.message));
    }
  }
}

/** How close a match is, in a few words: the ranking's weighted distance when it gave one. */
export function matchNote(m) {
  const bits = m.weighted ?? m.distance;
  const close = bits === null || bits === undefined ? "" : `${Math.round(bits)} bits`;
  return [m.match ? "copy" : "", close, m.mirrored ? "mirrored" : ""].filter(Boolean).join(", ");
}

/** A row of thumbnails, each a button that opens its image. */
export function strip(items, open) {
  return h("ul", { class: "strip" }, items.map((m) => h("li", {},
    h("button", { type: "button", class: "tile", "data-id": m.id, onclick: () => open(m.id),
      title: m.title || m.id },
    thumb(m, "sm"), h("span", { class: "note" }, m.note || "")))));
}
