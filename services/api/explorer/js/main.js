// The explorer's wiring: routes (the address says what is shown, so back, forward and links
// work), the views, and the actions that lead from one to another.
//
//   #/                      start: the most central images, recent crawls
//   #/image/ID/DEPTH        the neighbourhood of an image
//   #/path/FROM/TO          the chain of similar images between two
//   #/crawls                crawls
//   #/analysis              the latest whole-graph analysis

import { api, capabilities, setToken, token } from "./api.js";
import { initAnalysis, latestAnalysis, showAnalysis } from "./analysis.js";
import { initCrawls, showCrawls, stopCrawls } from "./crawls.js";
import { byId, h, plural, put, say } from "./dom.js";
import { initFind } from "./find.js";
import { GraphView, communityColor } from "./graph.js";
import { showPanel, strip } from "./panel.js";
import { initPath, showPath } from "./path.js";

const VIEWS = ["home", "graph", "path", "crawls", "analysis"];
const state = { view: null, image: null, depth: 2, pathFrom: "", pathTo: "" };

const go = (hash) => {
  if (location.hash === hash) route();
  else location.hash = hash;
};
const imageRoute = (id, depth = state.depth) => `#/image/${encodeURIComponent(id)}/${depth}`;
const open = (id) => go(imageRoute(id));

const graph = new GraphView(byId("graph"), {
  onSelect: (id) => openPanel(id),
  onCentre: open,
  onNotice: (text) => {
    byId("graph-notice").textContent = text;
    byId("graph-notice").hidden = !text;
  },
});

function openPanel(id) {
  showPanel(byId("panel"), id, {
    centre: open,
    expand: state.view === "graph" && graph.nodes.has(id) ? expand : null,
    pathFrom: (from) => { state.pathFrom = from; go(pathRoute()); },
    pathTo: (to) => { state.pathTo = to; go(pathRoute()); },
    open,
  });
}

const pathRoute = () => `#/path/${encodeURIComponent(state.pathFrom)}/${encodeURIComponent(state.pathTo)}`;

async function expand(id) {
  say(`Expanding ${id}…`);
  try {
    const { added, left } = await graph.expand(id);
    legend();
    say(added ? `${plural(added, "image")} added around ${id}` +
      (left ? `; ${left} more not drawn (the drawing is full)` : "")
      : left ? "The drawing is full: centre on this image to see its neighbourhood"
        : `Every neighbour of ${id} is already drawn`);
  } catch (err) {
    say(err.message, "error");
  }
}

function showView(name) {
  state.view = name;
  for (const view of VIEWS) byId(`view-${view}`).hidden = view !== name;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (name !== "crawls") stopCrawls();
}

async function showGraph(id, depth) {
  showView("graph");
  state.image = id;
  state.depth = depth;
  for (const radio of document.querySelectorAll("input[name=depth]")) {
    radio.checked = Number(radio.value) === depth;
  }
  byId("graph-title").textContent = `Neighbourhood of ${id}`;
  say(`Loading the neighbourhood of ${id}…`);
  try {
    const data = await graph.show(id, depth);
    const seed = data.nodes.find((n) => n.id === id);
    byId("graph-title").textContent = seed?.title ? `Around “${seed.title}”` : `Around ${id}`;
    document.title = `${seed?.title || id} · Lookalike explorer`;
    legend();
    performance.mark("graph-drawn");
    say(`${plural(data.nodes.length, "image")} and ${plural(data.edges.length, "link")} ` +
      `within ${depth} ${depth === 1 ? "hop" : "hops"}`);
    graph.select(id);
  } catch (err) {
    if (err.name === "AbortError") return;
    byId("graph-title").textContent = `Cannot show ${id}`;
    say(err.message, "error");
    put(byId("panel"), h("p", { class: "error", role: "alert" }, err.message));
  }
}

/** The communities present in the drawing, with their colours. */
function legend() {
  const counts = new Map();
  for (const node of graph.nodes.values()) {
    const c = node.data.community;
    if (c !== undefined && c !== null) counts.set(c, (counts.get(c) || 0) + 1);
  }
  const el = byId("legend");
  if (!counts.size) {
    put(el, h("span", { class: "muted" }, "Thicker links: higher rank. ",
      "Run an analysis to colour communities."));
    return;
  }
  put(el, h("span", { class: "muted" }, "Communities: "),
    [...counts].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([c, n]) => h("span",
      { class: "chip small", title: `${n} drawn images in community ${c}` },
      h("span", { class: "swatch-dot", style: `background:${communityColor(c)}` }), `${c}`)));
}

async function showHome() {
  showView("home");
  document.title = "Lookalike explorer";
  const start = byId("home-start");
  try {
    const job = await latestAnalysis();
    const top = job?.summary?.centrality?.pagerank || [];
    if (top.length) {
      const images = await Promise.all(top.slice(0, 8).map((t) => api.image(t.id)
        .catch(() => ({ id: t.id }))));
      put(start, h("h2", {}, "Start from one of the most central images"),
        strip(images.map((m) => ({ ...m, note: m.title || m.id })), open));
      return;
    }
    const { crawls } = await api.crawls(0, 5);
    const seeds = [...new Set(crawls.flatMap((c) => c.seeds || []))].slice(0, 8);
    put(start, seeds.length
      ? [h("h2", {}, "Start from the seed of a recent crawl"),
        strip(seeds.map((id) => ({ id, note: id })), open)]
      : h("p", {}, "The graph is empty: start a crawl on the Crawls page."));
  } catch (err) {
    put(start, h("p", { class: "error" }, err.message));
  }
}

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const [view, a, b] = parts;
  if (view === "image" && a) {
    const depth = Math.min(3, Math.max(1, Number(b) || state.depth)); // the API refuses more
    showGraph(a, depth);
  } else if (view === "path") {
    showView("path");
    state.pathFrom = a || "";
    state.pathTo = b || "";
    showPath(state.pathFrom, state.pathTo, open);
  } else if (view === "crawls") {
    showView("crawls");
    showCrawls(open);
  } else if (view === "analysis") {
    showView("analysis");
    showAnalysis({ onOpen: open });
  } else {
    showHome();
  }
}

function showResults(...children) {
  const aside = byId("results");
  put(aside, ...children);
  aside.hidden = false;
  aside.querySelector("h2")?.focus();
}

async function init() {
  initFind({ onOpen: open, showResults });
  initPath({ onRoute: go });
  initCrawls({ onOpen: open });
  initAnalysis({ onOpen: open });
  for (const radio of document.querySelectorAll("input[name=depth]")) {
    radio.addEventListener("change", () => state.image && go(imageRoute(state.image,
      Number(radio.value))));
  }
  byId("fit").addEventListener("click", () => graph.fit());
  byId("zoom-in").addEventListener("click", () => graph.zoom(1.25));
  byId("zoom-out").addEventListener("click", () => graph.zoom(0.8));
  byId("token").value = token();
  byId("token").addEventListener("change", (e) => setToken(e.target.value.trim()));
  document.addEventListener("keydown", (e) => {
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement?.tagName);
    if (e.key === "/" && !typing) { e.preventDefault(); byId("q").focus(); }
  });
  window.addEventListener("hashchange", route);
  window.addEventListener("resize", () => state.view === "graph" && graph.fit());
  route();
  const caps = await capabilities();
  byId("token-box").hidden = !caps.tokenNeeded("/crawls", "post");
  for (const radio of document.querySelectorAll("input[name=depth]")) {
    radio.closest("label").hidden = Number(radio.value) > caps.limits.depth;
  }
}

init();
