// The shortest chain of similar images between two images, drawn as a row of thumbnails
// with the direction and rank of each link between them.

import { api } from "./api.js";
import { byId, h, put, say } from "./dom.js";

export function initPath({ onRoute }) {
  byId("path-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const from = byId("path-from").value.trim();
    const to = byId("path-to").value.trim();
    if (from && to) onRoute(`#/path/${encodeURIComponent(from)}/${encodeURIComponent(to)}`);
  });
}

export async function showPath(from, to, onOpen) {
  byId("path-from").value = from || "";
  byId("path-to").value = to || "";
  const out = byId("path-chain");
  if (!from || !to) {
    put(out, h("p", { class: "muted" },
      "Choose two images (or use “Path from here” and “Path to here” in an image's panel)."));
    return;
  }
  put(out, h("p", { class: "muted" }, "Looking for a chain…"));
  const hops = Number(byId("path-hops").value) || 6;
  try {
    const found = await api.path(from, to, hops);
    const items = [];
    found.nodes.forEach((node, i) => {
      if (i > 0) items.push(linkItem(found.edges[i - 1], found.nodes[i - 1].id));
      items.push(h("li", { class: "stop", "data-id": node.id }, h("button", { type: "button", class: "tile",
        onclick: () => onOpen(node.id), title: node.title || node.id },
      h("img", { class: "thumb thumb-lg", alt: node.title ? `${node.title} (${node.id})`
        : `Image ${node.id}`, src: `/images/${encodeURIComponent(node.id)}/thumbnail?placeholder=true` }),
      h("span", { class: "stop-title" }, node.title || "Untitled"),
      h("span", { class: "muted" }, node.id))));
    });
    put(out, h("p", {}, `${found.hops} ${found.hops === 1 ? "step" : "steps"} from `,
      h("strong", {}, found.nodes[0].title || from), " to ",
      h("strong", {}, found.nodes.at(-1).title || to), "."),
    h("ol", { class: "chain", "aria-label": "Chain of similar images" }, items));
    say(`A chain of ${found.hops} steps`);
  } catch (err) {
    put(out, h("p", { class: "error", role: "alert" }, err.message));
    say(err.message, "error");
  }
}

/** Between two stops: which of them lists the other, and at what rank. */
function linkItem(edge, previous) {
  const forward = edge.source === previous;
  const rank = edge.rank ? ` #${edge.rank}` : "";
  const text = forward ? `lists next as${rank}` : `listed by next as${rank}`;
  return h("li", { class: `link ${forward ? "forward" : "backward"}`, "aria-label": text },
    h("span", { class: "arrow", "aria-hidden": "true" }, forward ? "→" : "←"),
    h("span", { class: "rank" }, rank.trim() || "?"));
}
