// Inline SVG icons (the project's own shapes): each one is drawn from a few primitives.
import { h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const SHAPES = {
  desktop: [
    ["rect", { x: 2, y: 4, width: 20, height: 13, rx: 2 }],
    ["path", { d: "M8 21h8M12 17v4" }],
  ],
  mobile: [
    ["rect", { x: 7, y: 2, width: 10, height: 20, rx: 2 }],
    ["path", { d: "M11 18h2" }],
  ],
  tablet: [
    ["rect", { x: 4, y: 2, width: 16, height: 20, rx: 2 }],
    ["path", { d: "M11 18h2" }],
  ],
  server: [
    ["rect", { x: 3, y: 4, width: 18, height: 7, rx: 1 }],
    ["rect", { x: 3, y: 13, width: 18, height: 7, rx: 1 }],
    ["path", { d: "M7 7.5h.01M7 16.5h.01" }],
  ],
  browser: [
    ["circle", { cx: 12, cy: 12, r: 9 }],
    ["path", { d: "M3 12h18M12 3a14 14 0 0 1 0 18M12 3a14 14 0 0 0 0 18" }],
  ],
  play: [["path", { d: "M8 5l11 7-11 7z", fill: "currentColor" }]],
  rage: [["path", { d: "M13 2L4 14h7l-1 8 9-12h-7z", fill: "currentColor" }]],
  user: [
    ["circle", { cx: 12, cy: 8, r: 4 }],
    ["path", { d: "M4 21c1-4 4-6 8-6s7 2 8 6" }],
  ],
  search: [
    ["circle", { cx: 11, cy: 11, r: 7 }],
    ["path", { d: "M20 20l-4-4" }],
  ],
};
// A browser family's colour, so that the globe tells Chrome from Safari at a glance.
const BROWSER_COLORS = [
  [/edge/i, "#0f7b5f"],
  [/samsung/i, "#5b3fb0"],
  [/chrom/i, "#1a64d6"],
  [/firefox/i, "#c24e00"],
  [/safari/i, "#0a6fd1"],
  [/opera/i, "#c4141d"],
];

/** An SVG icon, hidden from assistive technology (its label is given beside it). */
export function svg(name, className = "") {
  const root = document.createElementNS(SVG, "svg");
  root.setAttribute("viewBox", "0 0 24 24");
  root.setAttribute("aria-hidden", "true");
  root.setAttribute("focusable", "false");
  root.setAttribute("class", `icon ${className}`.trim());
  for (const [tag, attrs] of SHAPES[name]) {
    const shape = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs)) shape.setAttribute(key, String(value));
    root.append(shape);
  }
  return root;
}

/** An icon with its details on hover (title) and for screen readers (hidden text). */
export function labelled(name, label, className = "") {
  return h(
    "span",
    { className: `glyph ${className}`.trim(), title: label },
    svg(name),
    h("span", { className: "sr-only" }, label),
  );
}

/** The icons of a session: device and browser for web, a badge for iOS / Android / server. */
export function sessionIcons(session) {
  const device = (session.deviceType ?? "desktop").toLowerCase();
  const shape = SHAPES[device] ? device : "desktop";
  if (session.source === "WEB") {
    const browser = session.browser ?? "Unknown browser";
    const color = BROWSER_COLORS.find(([pattern]) => pattern.test(browser))?.[1] ?? "#555";
    const details = `${browser} on ${session.platform ?? "an unknown platform"} (${device})`;
    const globe = labelled("browser", details, "browser");
    globe.style.color = color;
    return h(
      "span",
      { className: "icons" },
      labelled(shape, `${device}: ${session.platform ?? "unknown platform"}`),
      globe,
    );
  }
  if (session.source === "SERVER")
    return h("span", { className: "icons" }, labelled("server", "Server-side events only"));
  const os = session.source === "IOS" ? "iOS" : "Android";
  const details = `${os} app${session.platform ? ` on ${session.platform}` : ""} (${device})`;
  return h(
    "span",
    { className: "icons", title: details },
    svg(shape),
    h("span", { className: `badge ${os.toLowerCase()}` }, os),
    h("span", { className: "sr-only" }, details),
  );
}
