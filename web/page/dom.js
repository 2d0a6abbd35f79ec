// Small DOM helpers: every piece of data goes in as text, never as HTML.
import { NeedsKey } from "./api.js";

/** An element: h("a", {href: "#/"}, "text", child, [more children]). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "className") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name === "value") el.value = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces everything inside `el` with `children`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const shortTime = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });

/** "Dec 6, 2026". */
export const day = (iso) => dateFormat.format(new Date(iso));
/** "Dec 6, 2026, 7:22:23 PM": the exact time shown on hover. */
export const exact = (iso) => timeFormat.format(new Date(iso));
/** "7:22:23 PM". */
export const clock = (iso) => shortTime.format(new Date(iso));

/** "3 minutes ago", "2 days ago". */
export function ago(iso, now = Date.now()) {
  const seconds = Math.round((now - new Date(iso).getTime()) / 1000);
  const units = [
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
  ];
  for (const [unit, size] of units) {
    if (seconds >= size) {
      const n = Math.floor(seconds / size);
      return `${n} ${unit}${n === 1 ? "" : "s"} ago`;
    }
  }
  return "just now";
}

/** "1h 4m", "1m 21s", "0s". */
export function duration(seconds) {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

/** "Berlin, Berlin, Germany", or null. */
export function place(location) {
  if (!location) return null;
  const parts = [location.city, location.region, location.country].filter(Boolean);
  return parts.length ? [...new Set(parts)].join(", ") : null;
}

/** A property value as text. */
export function text(value) {
  if (value === null || value === undefined) return "—";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/** Calls `fn` once typing pauses for `ms`. */
export function debounce(fn, ms = 200) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** Up / Down move between rows; Space opens a row like Enter does on its link. */
export function rowKeys(event) {
  const row = event.target.closest("tr, li");
  if (!row) return;
  if (event.key === " " && event.target.matches("a")) {
    event.preventDefault();
    event.target.click();
    return;
  }
  if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
  const sibling = event.key === "ArrowDown" ? row.nextElementSibling : row.previousElementSibling;
  const target = sibling?.querySelector("a, button");
  if (target) {
    event.preventDefault();
    target.focus();
  }
}

/** Shows an error in `where` instead of losing it. */
export const report = (where) => (error) => {
  where.textContent = `Error: ${error.message}`;
  where.classList.add("error");
  if (error instanceof NeedsKey) window.dispatchEvent(new CustomEvent("usertrail:needs-key"));
};
