// The neighbourhood drawing: SVG, positions from the server (layout=spring), thumbnails on
// the nodes, directed edges whose thickness says their rank, expansion in place.
//
// Keyboard: the drawing is one tab stop. Arrow keys move between nodes (to the nearest one
// in that direction), Enter selects, E expands, C centres the drawing on the node, + and -
// zoom, 0 fits everything in view.

import { api } from "./api.js";
import { s, safeColor, thumbnailUrl } from "./dom.js";

export const MAX_DRAWN = 150;
const UNIT = 52; // px per layout unit: one node's width
const NODE = 44; // thumbnail size in px
const SEED_NODE = 60;
const GAP = 1.4; // layout units between node centres, as on the server

// Twelve colours that stay apart for most eyes, for communities.
export const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
  "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#17becf"];

export function communityColor(community) {
  return community === undefined || community === null ? null
    : PALETTE[Number(community) % PALETTE.length];
}

function label(node) {
  return node.title ? `${node.title} (${node.id})` : `Image ${node.id}`;
}

export class GraphView {
  constructor(svg, { onSelect, onCentre, onNotice }) {
    this.svg = svg;
    this.onSelect = onSelect;
    this.onCentre = onCentre;
    this.onNotice = onNotice;
    this.nodes = new Map(); // id -> {id, x, y, data, el}
    this.links = new Map(); // "a>b" -> {source, target, rank}
    this.view = { k: 1, x: 0, y: 0 };
    this.seed = null;
    this.selected = null;
    this.focused = null;
    this.controller = null;
    this.build();
  }

  build() {
    const arrow = (id, cls) => s("marker", {
      id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 9, markerHeight: 9,
      markerUnits: "userSpaceOnUse", orient: "auto-start-reverse",
    }, s("path", { d: "M0,0 L10,5 L0,10 z", class: cls }));
    this.svg.append(s("defs", {},
      arrow("arrow", "arrowhead"), arrow("arrow-hot", "arrowhead hot"),
      s("clipPath", { id: "clip-node", clipPathUnits: "objectBoundingBox" },
        s("rect", { width: 1, height: 1, rx: 0.14 }))));
    this.viewport = s("g", { class: "viewport" });
    this.edgeLayer = s("g", { class: "edges" });
    this.labelLayer = s("g", { class: "labels", "aria-hidden": "true" });
    this.nodeLayer = s("g", { class: "nodes" });
    this.viewport.append(this.edgeLayer, this.nodeLayer, this.labelLayer);
    this.svg.append(this.viewport);
    this.svg.addEventListener("keydown", (e) => this.key(e));
    this.panZoom();
  }

  /** Draw the neighbourhood of ``id`` afresh. Resolves to the API's answer. */
  async show(id, depth) {
    this.controller?.abort();
    this.controller = new AbortController();
    const data = await api.neighborhood(id, depth, MAX_DRAWN, this.controller.signal);
    this.nodes.clear();
    this.links.clear();
    this.nodeLayer.replaceChildren();
    this.seed = id;
    this.selected = null;
    this.focused = id;
    this.merge(data, { x: 0, y: 0 });
    this.render();
    this.fit();
    this.svg.setAttribute("aria-label",
      `Neighbourhood of ${label(this.nodes.get(id).data)}: ${this.nodes.size} images, ` +
      `${this.links.size} links. Arrow keys move between images, Enter selects, E expands.`);
    return data;
  }

  /** Add the 1-hop neighbourhood of a drawn node around it, keeping everything else where
   * it is. Returns {added, left} (left: neighbours not drawn because the drawing is full). */
  async expand(id) {
    const base = this.nodes.get(id);
    if (!base) return { added: 0, left: 0 };
    const data = await api.neighborhood(id, 1, MAX_DRAWN);
    const before = this.nodes.size;
    const left = this.merge(data, base);
    const fresh = [...this.nodes.values()].slice(before);
    separate(fresh, [...this.nodes.values()]);
    this.render();
    for (const node of fresh) node.el.classList.add("fresh");
    return { added: fresh.length, left };
  }

  /** Add nodes (positions relative to ``origin``, in layout units) and links; returns how
   * many nodes did not fit under MAX_DRAWN. */
  merge(data, origin) {
    let left = 0;
    for (const n of data.nodes) {
      if (this.nodes.has(n.id)) {
        Object.assign(this.nodes.get(n.id).data, n, { x: undefined, y: undefined });
        continue;
      }
      if (this.nodes.size >= MAX_DRAWN) { left += 1; continue; }
      this.nodes.set(n.id, { id: n.id, x: origin.x + n.x, y: origin.y + n.y, data: n });
    }
    for (const l of data.edges) {
      if (this.nodes.has(l.source) && this.nodes.has(l.target)) {
        this.links.set(`${l.source}>${l.target}`, l);
      }
    }
    if (data.truncated || left) {
      this.onNotice?.(`Showing ${this.nodes.size} images: the neighbourhood has more ` +
        `(at most ${MAX_DRAWN} are drawn). Choose a smaller depth or centre on another image.`);
    } else {
      this.onNotice?.("");
    }
    return left;
  }

  render() {
    for (const node of this.nodes.values()) {
      if (!node.el) node.el = this.nodeElement(node);
      const size = node.id === this.seed ? SEED_NODE : NODE;
      node.el.setAttribute("transform", `translate(${node.x * UNIT},${node.y * UNIT})`);
      node.el.querySelector(".ring").setAttribute("stroke",
        communityColor(node.data.community) || "var(--node-ring)");
      node.el.classList.toggle("selected", node.id === this.selected);
      node.el.classList.toggle("seed", node.id === this.seed);
      node.el.dataset.size = size;
    }
    this.renderEdges();
  }

  nodeElement(node) {
    const size = node.id === this.seed ? SEED_NODE : NODE;
    const half = size / 2;
    const el = s("g", {
      class: "node", role: "button", tabindex: node.id === this.focused ? 0 : -1,
      "data-id": node.id, "aria-label": label(node.data),
    },
    s("rect", { class: "ring", x: -half - 3, y: -half - 3, width: size + 6, height: size + 6,
      rx: 8 }),
    // Without a cached thumbnail: the image's average colour, with no request for it.
    node.data.thumbnail_cached === false
      ? s("rect", { x: -half, y: -half, width: size, height: size, rx: 6,
        fill: safeColor(node.data.average_color), role: "img", "aria-label": label(node.data) })
      : s("image", { href: thumbnailUrl(node.id), x: -half, y: -half, width: size,
        height: size, preserveAspectRatio: "xMidYMid slice", "clip-path": "url(#clip-node)",
        role: "img", "aria-label": label(node.data) }),
    s("title", { text: label(node.data) }));
    el.addEventListener("click", (e) => { e.stopPropagation(); this.select(node.id); });
    el.addEventListener("dblclick", (e) => { e.stopPropagation(); this.onCentre?.(node.id); });
    el.addEventListener("focus", () => { this.focused = node.id; });
    this.nodeLayer.append(el);
    return el;
  }

  renderEdges() {
    this.edgeLayer.replaceChildren();
    this.labelLayer.replaceChildren();
    const hot = [];
    for (const link of this.links.values()) {
      const a = this.nodes.get(link.source);
      const b = this.nodes.get(link.target);
      const touches = link.source === this.selected || link.target === this.selected;
      const geometry = curve(a, b);
      const rank = link.rank ?? 0;
      const path = s("path", {
        d: geometry.d, class: `edge${touches ? " hot" : ""}`,
        "stroke-width": rank ? Math.max(1, 3.4 - 0.55 * (rank - 1)) : 1,
        "marker-end": touches ? "url(#arrow-hot)" : "url(#arrow)",
        "data-source": link.source, "data-target": link.target, "data-rank": rank,
      }, s("title", { text: `${a.data.title || a.id} lists ${b.data.title || b.id}` +
        (rank ? ` as its #${rank} most similar image` : "") }));
      if (touches) hot.push(path);
      else this.edgeLayer.append(path);
      if (touches && rank) {
        this.labelLayer.append(s("g", { class: "rank", transform:
          `translate(${geometry.label.x},${geometry.label.y})` },
        s("circle", { r: 9 }), s("text", { "text-anchor": "middle", dy: "0.35em",
          text: rank })));
      }
    }
    // Edges of the selected node last, so they are drawn over the others.
    this.edgeLayer.append(...hot);
  }

  select(id) {
    if (!this.nodes.has(id)) return;
    this.selected = id;
    this.focus(id, false);
    this.render();
    this.onSelect?.(id, this.nodes.get(id).data);
  }

  focus(id, move = true) {
    for (const node of this.nodes.values()) {
      node.el?.setAttribute("tabindex", node.id === id ? 0 : -1);
    }
    this.focused = id;
    if (move) this.nodes.get(id)?.el?.focus();
  }

  key(e) {
    const actions = { "+": () => this.zoom(1.25), "=": () => this.zoom(1.25),
      "-": () => this.zoom(0.8), "0": () => this.fit() };
    const current = this.nodes.get(this.focused);
    if (actions[e.key]) {
      actions[e.key]();
    } else if (e.key.startsWith("Arrow") && current) {
      const next = nearestInDirection(current, [...this.nodes.values()], e.key);
      if (next) { this.focus(next.id); this.keepInView(next); }
    } else if ((e.key === "Enter" || e.key === " ") && current) {
      this.select(current.id);
    } else if ((e.key === "e" || e.key === "E") && current) {
      this.svg.dispatchEvent(new CustomEvent("expand", { detail: current.id }));
    } else if ((e.key === "c" || e.key === "C") && current) {
      this.onCentre?.(current.id);
    } else {
      return;
    }
    e.preventDefault();
  }

  // ---------------------------------------------------------------- pan and zoom

  apply() {
    const { k, x, y } = this.view;
    this.viewport.setAttribute("transform", `translate(${x},${y}) scale(${k})`);
  }

  fit() {
    const box = this.svg.getBoundingClientRect();
    const xs = [...this.nodes.values()].map((n) => n.x * UNIT);
    const ys = [...this.nodes.values()].map((n) => n.y * UNIT);
    if (!xs.length || !box.width) return;
    const pad = SEED_NODE;
    const [x0, x1, y0, y1] = [Math.min(...xs) - pad, Math.max(...xs) + pad,
      Math.min(...ys) - pad, Math.max(...ys) + pad];
    const k = Math.min(1.6, box.width / (x1 - x0), box.height / (y1 - y0));
    this.view = { k, x: box.width / 2 - k * (x0 + x1) / 2, y: box.height / 2 - k * (y0 + y1) / 2 };
    this.apply();
  }

  zoom(factor, cx, cy) {
    const box = this.svg.getBoundingClientRect();
    const px = cx ?? box.width / 2;
    const py = cy ?? box.height / 2;
    const k = Math.min(4, Math.max(0.15, this.view.k * factor));
    const f = k / this.view.k;
    this.view = { k, x: px - (px - this.view.x) * f, y: py - (py - this.view.y) * f };
    this.apply();
  }

  keepInView(node) {
    const box = this.svg.getBoundingClientRect();
    const px = this.view.x + node.x * UNIT * this.view.k;
    const py = this.view.y + node.y * UNIT * this.view.k;
    const margin = 60;
    if (px < margin || py < margin || px > box.width - margin || py > box.height - margin) {
      this.view.x += box.width / 2 - px;
      this.view.y += box.height / 2 - py;
      this.apply();
    }
  }

  panZoom() {
    let drag = null;
    this.svg.addEventListener("wheel", (e) => {
      e.preventDefault();
      const box = this.svg.getBoundingClientRect();
      this.zoom(e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX - box.left, e.clientY - box.top);
    }, { passive: false });
    this.svg.addEventListener("pointerdown", (e) => {
      if (e.target.closest(".node")) return;
      drag = { x: e.clientX, y: e.clientY, vx: this.view.x, vy: this.view.y };
      this.svg.setPointerCapture(e.pointerId);
    });
    this.svg.addEventListener("pointermove", (e) => {
      if (!drag) return;
      this.view.x = drag.vx + e.clientX - drag.x;
      this.view.y = drag.vy + e.clientY - drag.y;
      this.apply();
    });
    this.svg.addEventListener("pointerup", () => { drag = null; });
  }
}

const T = 0.62;
const T1 = 1 - T;

/** A gently curved edge from a to b (to the left of its direction, so the two edges of a
 * reciprocal pair do not overlap), ending at b's border; and where its rank label goes. */
function curve(a, b) {
  const [ax, ay, bx, by] = [a.x * UNIT, a.y * UNIT, b.x * UNIT, b.y * UNIT];
  const dx = bx - ax;
  const dy = by - ay;
  const len = Math.hypot(dx, dy) || 1;
  const [nx, ny] = [-dy / len, dx / len];
  const bend = Math.min(24, len * 0.12);
  const [cx, cy] = [(ax + bx) / 2 + nx * bend, (ay + by) / 2 + ny * bend];
  // Stop at the target's border (a node is about NODE wide; the seed larger).
  const stop = (b.el?.dataset.size ? Number(b.el.dataset.size) : NODE) / 2 + 6;
  const tx = bx - cx;
  const ty = by - cy;
  const tl = Math.hypot(tx, ty) || 1;
  const [ex, ey] = [bx - (tx / tl) * stop, by - (ty / tl) * stop];
  return {
    d: `M${ax},${ay} Q${cx},${cy} ${ex},${ey}`,
    // Two thirds along the curve: labels of a node's many edges do not pile up beside it.
    label: { x: T1 * T1 * ax + 2 * T1 * T * cx + T * T * ex,
      y: T1 * T1 * ay + 2 * T1 * T * cy + T * T * ey },
  };
}

/** Move new nodes away from every node closer than GAP (the old ones stay put). */
function separate(fresh, all) {
  for (let round = 0; round < 40; round += 1) {
    let moved = false;
    for (const n of fresh) {
      for (const m of all) {
        if (m === n) continue;
        let dx = n.x - m.x;
        let dy = n.y - m.y;
        let d = Math.hypot(dx, dy);
        if (d >= GAP) continue;
        if (d < 1e-6) { dx = Math.cos(round + n.id.length); dy = Math.sin(round); d = 1; }
        const push = (GAP - d) / d;
        n.x += dx * push;
        n.y += dy * push;
        moved = true;
      }
    }
    if (!moved) break;
  }
}

/** The drawn node nearest to ``from`` in the direction of an arrow key, if any. */
function nearestInDirection(from, nodes, key) {
  const dir = { ArrowRight: [1, 0], ArrowLeft: [-1, 0], ArrowDown: [0, 1], ArrowUp: [0, -1] }[key];
  let best = null;
  let bestScore = Infinity;
  for (const n of nodes) {
    if (n === from) continue;
    const dx = n.x - from.x;
    const dy = n.y - from.y;
    const along = dx * dir[0] + dy * dir[1];
    if (along <= 0.01) continue;
    const across = Math.abs(dx * dir[1] - dy * dir[0]);
    const score = along + 2 * across;
    if (score < bestScore) { bestScore = score; best = n; }
  }
  return best;
}
