// Crawls: the list (a page at a time), live progress of the running ones, and a form that
// starts a crawl (with the API token when the server requires one).

import { ApiError, api } from "./api.js";
import { byId, fmtTime, h, plural, put, say } from "./dom.js";

const PAGE = 20;
const LIVE = new Set(["queued", "running"]);
let offset = 0;
let timer = null;

export function initCrawls({ onOpen }) {
  byId("crawl-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const seeds = byId("crawl-seeds").value.split(/[\s,]+/).filter(Boolean);
    const depth = Number(byId("crawl-depth").value);
    const max = byId("crawl-max").value ? Number(byId("crawl-max").value) : undefined;
    const result = byId("crawl-result");
    try {
      const crawl = await api.startCrawl({ seeds, depth, max_images: max });
      put(result, `Crawl ${crawl.id} started.`);
      say(`Crawl ${crawl.id} started`);
      offset = 0;
      await showCrawls(onOpen);
    } catch (err) {
      put(result, h("span", { class: "error", role: "alert" }, err.message));
      if (err instanceof ApiError && err.status === 401) byId("token-box").hidden = false;
    }
  });
  byId("crawls-prev").addEventListener("click", () => {
    offset = Math.max(0, offset - PAGE);
    showCrawls(onOpen);
  });
  byId("crawls-next").addEventListener("click", () => {
    offset += PAGE;
    showCrawls(onOpen);
  });
}

export function stopCrawls() {
  clearTimeout(timer);
  timer = null;
}

export async function showCrawls(onOpen) {
  stopCrawls();
  const table = byId("crawls-body");
  let page;
  try {
    page = await api.crawls(offset, PAGE);
  } catch (err) {
    put(table, h("tr", {}, h("td", { colspan: 6, class: "error" }, err.message)));
    return;
  }
  put(table, page.crawls.length ? page.crawls.map((c) => row(c, onOpen))
    : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No crawls yet.")));
  byId("crawls-range").textContent = page.total
    ? `${offset + 1}–${offset + page.crawls.length} of ${page.total}` : "";
  byId("crawls-prev").disabled = offset === 0;
  byId("crawls-next").disabled = offset + page.crawls.length >= page.total;
  const live = page.crawls.filter((c) => LIVE.has(c.status)).map((c) => c.id);
  if (live.length) follow(live, onOpen);
}

/** Poll the running crawls once a second and update their rows until they end. */
function follow(ids, onOpen) {
  timer = setTimeout(async () => {
    const still = [];
    for (const id of ids) {
      try {
        const crawl = await api.crawl(id);
        byId(`crawl-${id}`)?.replaceWith(row(crawl, onOpen));
        if (LIVE.has(crawl.status)) still.push(id);
      } catch (err) {
        say(err.message, "error");
      }
    }
    if (still.length && timer !== null) follow(still, onOpen);
  }, 1000);
}

function row(c, onOpen) {
  const counts = c.counts || {};
  const queued = Object.values(c.queued || {}).reduce((a, b) => a + b, 0);
  const done = counts.fetched || 0;
  const progress = LIVE.has(c.status)
    ? h("progress", { max: Math.max(1, done + queued), value: done,
      "aria-label": `crawl ${c.id}: ${done} fetched, ${queued} queued` })
    : null;
  return h("tr", { id: `crawl-${c.id}`, class: `status-${c.status}` },
    h("td", {}, h("span", { class: "badge" }, c.status), progress,
      LIVE.has(c.status) ? h("span", { class: "muted" }, ` level ${c.level ?? 0} of ${c.depth}`) : null),
    h("td", {}, h("code", {}, c.id)),
    h("td", {}, (c.seeds || []).slice(0, 3).map((seed) => h("button", { type: "button",
      class: "linkish", onclick: () => onOpen(seed) }, seed)),
    (c.seeds || []).length > 3 ? ` +${c.seeds.length - 3}` : ""),
    h("td", {}, `depth ${c.depth}`, c.max_images ? `, ≤ ${c.max_images}` : ""),
    h("td", {}, `${plural(done, "fetched", "fetched")} · ${plural(counts.nodes || 0, "image")} · ` +
      `${plural(counts.edges || 0, "edge")}`, counts.failed_total
      ? h("span", { class: "error" }, ` · ${counts.failed_total} failed`) : ""),
    h("td", {}, fmtTime(c.created_at)));
}
