// Building DOM and SVG elements from data without innerHTML, so no title or id from the
// graph can ever inject markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function fill(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "text") {
      el.textContent = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** An HTML element: h("a", {href: "#"}, "text", otherElement). */
export function h(tag, attrs, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** An SVG element, same calling convention as h. */
export function s(tag, attrs, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Replace an element's children. */
export function put(el, ...children) {
  el.replaceChildren();
  return fill(el, {}, children);
}

export function byId(id) {
  return document.getElementById(id);
}

let quiet = null;

/** Announce a message to screen readers and show it for a few seconds. */
export function say(message, kind = "info") {
  const status = byId("status");
  status.textContent = message;
  status.dataset.kind = kind;
  clearTimeout(quiet);
  quiet = setTimeout(() => { status.textContent = ""; }, kind === "error" ? 9000 : 4000);
}

/** A thumbnail <img> with alt text. The API answers a swatch of the image's average colour
 * when it has no thumbnail cached, so no list ever shows a broken image. */
export function thumb(image, size = "md") {
  const label = image.title ? `${image.title} (${image.id})` : `Image ${image.id}`;
  return h("img", {
    class: `thumb thumb-${size}`, src: thumbnailUrl(image.id), alt: label, title: label,
    loading: "lazy", decoding: "async",
  });
}

export function thumbnailUrl(id) {
  return `/images/${encodeURIComponent(id)}/thumbnail?placeholder=true`;
}

/** A colour from the graph, only if it is a plain hex colour. */
export function safeColor(value) {
  return /^#[0-9a-fA-F]{3,8}$/.test(String(value || "")) ? value : "#8a8f98";
}

export function fmtTime(ms) {
  if (!ms) return "";
  return new Date(ms).toLocaleString();
}

export function plural(n, word, many = `${word}s`) {
  return `${n.toLocaleString()} ${n === 1 ? word : many}`;
}
