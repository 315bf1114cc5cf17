// Building the page's elements: the one helper every view uses.

/**
 * A new element: `attrs` maps "class" to the class name, "text" to the text, "on…" to
 * an event listener, `dataset` to data-* attributes, and anything else to an attribute
 * (true for a boolean one; false, null and undefined leave it out). `children` (nodes
 * or strings; null and undefined skipped) follow in order.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") {
      if (v) node.className = v;
    } else if (k === "text") {
      if (v !== null && v !== undefined) node.textContent = v;
    } else if (k === "dataset") {
      Object.assign(node.dataset, v);
    } else if (k.startsWith("on")) {
      node.addEventListener(k.slice(2), v);
    } else if (v !== false && v !== null && v !== undefined) {
      node.setAttribute(k, v === true ? "" : v);
    }
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

/** Replace `node`'s children with `children` (null and undefined skipped, as in `el`). */
export function fill(node, ...children) {
  node.replaceChildren(...children.filter((c) => c !== null && c !== undefined));
  return node;
}
