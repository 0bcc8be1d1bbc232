// The latest whole-graph analysis: its figures, the degree histogram, the communities (the
// colours of the drawing) and their members; and a button that starts a new analysis.

import { ApiError, api } from "./api.js";
import { PALETTE, communityColor } from "./graph.js";
import { byId, fmtTime, h, plural, put, s, say } from "./dom.js";
import { strip } from "./panel.js";

let latest = null;

/** The newest finished whole-graph analysis, or null (fetched once; ``fresh`` re-reads). */
export async function latestAnalysis(fresh = false) {
  if (latest === null || fresh) {
    const { jobs } = await api.latestAnalysis();
    latest = jobs.filter((j) => j.status === "done")
      .sort((a, b) => (b.finished_at || 0) - (a.finished_at || 0))[0] || false;
  }
  return latest || null;
}

export function initAnalysis({ onOpen }) {
  byId("analysis-start").addEventListener("click", async () => {
    const out = byId("analysis-status");
    try {
      let job = await api.startAnalysis();
      put(out, `Analysis ${job.id} ${job.status}…`);
      while (job.status === "queued" || job.status === "running") {
        await new Promise((r) => setTimeout(r, 1000));
        job = await api.job(job.id);
        put(out, `Analysis ${job.id} ${job.status}…`);
      }
      put(out, job.status === "done" ? `Analysis ${job.id} done.`
        : h("span", { class: "error" }, `Analysis ${job.id} ${job.status}: ${job.error || ""}`));
      await showAnalysis({ onOpen, fresh: true });
    } catch (err) {
      put(out, h("span", { class: "error", role: "alert" }, err.message));
      if (err instanceof ApiError && err.status === 401) byId("token-box").hidden = false;
    }
  });
}

export async function showAnalysis({ onOpen, fresh = false }) {
  const summaryEl = byId("analysis-summary");
  let job;
  try {
    job = await latestAnalysis(fresh);
  } catch (err) {
    put(summaryEl, h("p", { class: "error" }, err.message));
    return;
  }
  if (!job) {
    put(summaryEl, h("p", {}, "No whole-graph analysis has finished yet. Start one to colour ",
      "the drawing by community and see the degree histogram."));
    put(byId("degree-histogram"));
    put(byId("communities"));
    return;
  }
  const sum = job.summary || {};
  const communities = sum.communities || {};
  put(summaryEl, h("dl", { class: "figures" },
    figure("Images", sum.nodes), figure("Links", sum.edges),
    figure("Density", sum.density?.toPrecision?.(3)),
    figure("Components", sum.components?.count),
    figure("Largest component", sum.components?.largest),
    figure("Communities", communities.count),
    figure("Modularity", communities.modularity?.toFixed?.(3)),
    figure("Analysed", fmtTime(job.finished_at))));
  drawHistogram(byId("degree-histogram"), sum.degree_histogram || []);
  const sizes = communities.sizes || [];
  put(byId("communities"), sizes.map((size, n) => h("li", {},
    h("button", { type: "button", class: "chip", onclick: () => showMembers(n, onOpen) },
      h("span", { class: "swatch-dot", style: `background:${communityColor(n)}` }),
      `Community ${n}`, h("span", { class: "muted" }, ` ${plural(size, "image")}`)))));
  if (sizes.length > PALETTE.length) {
    byId("communities").append(h("li", { class: "muted" },
      `Colours repeat after ${PALETTE.length} communities.`));
  }
}

function figure(name, value) {
  return value === undefined || value === null ? null
    : h("div", {}, h("dt", {}, name), h("dd", {}, typeof value === "number"
      ? value.toLocaleString() : value));
}

async function showMembers(n, onOpen) {
  const out = byId("community-members");
  put(out, h("p", { class: "muted" }, `Community ${n}…`));
  try {
    const found = await api.community(n, 24);
    put(out, h("h3", {}, `Community ${n}: its most central images`),
      strip(found.images.map((m) => ({ ...m, note: m.id })), onOpen));
    say(`Community ${n}: ${found.images.length} images shown`);
  } catch (err) {
    put(out, h("p", { class: "error" }, err.message));
  }
}

/** Bars of the degree histogram (images per number of links), with a table for readers. */
function drawHistogram(el, counts) {
  if (!counts.length) { put(el); return; }
  const W = 560;
  const H = 180;
  const pad = { l: 44, r: 8, t: 8, b: 30 };
  const max = Math.max(...counts, 1);
  const bw = (W - pad.l - pad.r) / counts.length;
  const y = (v) => H - pad.b - (v / max) * (H - pad.t - pad.b);
  const bars = counts.map((v, d) => s("rect", { x: pad.l + d * bw + 0.5, y: y(v),
    width: Math.max(1, bw - 1), height: H - pad.b - y(v), class: "bar" },
  s("title", { text: `${plural(v, "image")} with ${plural(d, "link")}` })));
  const step = Math.max(1, Math.ceil(counts.length / 12));
  const ticks = counts.map((_, d) => d).filter((d) => d % step === 0).map((d) =>
    s("text", { x: pad.l + (d + 0.5) * bw, y: H - pad.b + 14, "text-anchor": "middle" }, d));
  put(el,
    s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "histogram",
      "aria-label": `Degree histogram: ${counts.length} degrees, at most ${max} images each` },
    s("line", { x1: pad.l, x2: W - pad.r, y1: H - pad.b, y2: H - pad.b, class: "axis" }),
    s("text", { x: pad.l - 6, y: pad.t + 8, "text-anchor": "end" }, max),
    s("text", { x: pad.l - 6, y: H - pad.b, "text-anchor": "end" }, 0),
    s("text", { x: (W + pad.l) / 2, y: H - 2, "text-anchor": "middle", class: "axis-label" },
      "links per image (either direction)"),
    ...bars, ...ticks),
    h("details", {}, h("summary", {}, "As a table"), h("table", { class: "compact" },
      h("tr", {}, h("th", {}, "links"), h("th", {}, "images")),
      counts.map((v, d) => v ? h("tr", {}, h("td", {}, d), h("td", {}, v)) : null))));
}
