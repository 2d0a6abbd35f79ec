// A session's events: most frequent first, then each event; "Define" on a raw one.
import { ApiError, gql } from "./api.js";
import { clock, exact, fill, h, rowKeys, text } from "./dom.js";
import { svg } from "./icons.js";

const EVENTS = `query SessionEvents($id: ID!, $after: String) {
  node(id: $id) { ... on Session {
    id eventCount
    mostFrequentEvents(limit: 5) { name count definition { id color } }
    events(first: 200, after: $after) {
      totalCount pageInfo { hasNextPage endCursor }
      edges { node {
        id type name defined color isRageClick serverSide time properties
        definition { id name color }
      } }
    }
  } }
}`;
const DEFINE = `mutation Define($input: DefineEventInput!) {
  defineEvent(input: $input) { definition { id name color } errors { field message code } }
}`;
const PALETTE = ["#4f46e5", "#0e7490", "#15803d", "#b45309", "#be185d", "#7c3aed"];

/** Shows the events of `session` in `pane`. */
export async function showEvents(pane, session) {
  fill(
    pane,
    h("h2", { id: "events-heading" }, "Events"),
    h("p", { className: "muted", role: "status" }, "Loading events…"),
  );
  const data = await gql(EVENTS, { id: session.id });
  const node = data.node;
  if (!node) {
    fill(
      pane,
      h("h2", { id: "events-heading" }, "Events"),
      h("p", {}, "This session no longer exists (the user was merged); reload the user."),
    );
    return;
  }
  const list = h("ol", { className: "events", "aria-label": "Events, oldest first" });
  const status = h("p", { className: "status", role: "status" });
  const frequent = h(
    "ul",
    { className: "frequent", "aria-label": "Most frequent events" },
    node.mostFrequentEvents.map((f) => frequentItem(f, list)),
  );
  const refresh = () => showEvents(pane, session);
  const more = h("button", { type: "button", "data-testid": "more-events" }, "Show more events");
  const append = (events) => {
    for (const { node: event } of events.edges) list.append(eventItem(event, status, refresh));
    more.hidden = !events.pageInfo.hasNextPage;
    more.dataset.after = events.pageInfo.endCursor ?? "";
    more.textContent = `Show more events (${list.children.length} of ${events.totalCount} shown)`;
  };
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      const next = await gql(EVENTS, { id: session.id, after: more.dataset.after });
      if (next.node) append(next.node.events);
    } catch (error) {
      status.textContent = `Error: ${error.message}`;
    } finally {
      more.disabled = false;
    }
  });
  append(node.events);
  list.addEventListener("keydown", rowKeys);
  fill(
    pane,
    h("h2", { id: "events-heading" }, `Events (${node.events.totalCount})`),
    h("h3", {}, "Most frequent events"),
    frequent,
    status,
    list,
    more,
  );
}

function frequentItem(frequency, list) {
  const matches = (item) =>
    frequency.definition
      ? item.dataset.definitionId === frequency.definition.id
      : item.dataset.defined === "false" && item.dataset.name === frequency.name;
  const mark = (on) => {
    for (const item of list.children) item.classList.toggle("hl", on && matches(item));
  };
  const marker = h("span", { className: "marker" });
  if (frequency.definition) marker.style.background = frequency.definition.color;
  const chip = h(
    "button",
    {
      type: "button",
      className: `freq ${frequency.definition ? "" : "raw"}`,
      "data-testid": "frequent-event",
      title: "Highlights its instances below",
    },
    marker,
    frequency.name,
    h("span", { className: "count" }, String(frequency.count)),
    h("span", { className: "sr-only" }, " times"),
  );
  for (const [type, on] of [
    ["mouseenter", true],
    ["mouseleave", false],
    ["focus", true],
    ["blur", false],
  ])
    chip.addEventListener(type, () => mark(on));
  return h("li", {}, chip);
}

let eventIds = 0;
function eventItem(event, status, refresh) {
  const n = ++eventIds;
  const detail = event.properties.target_text
    ? `“${event.properties.target_text}”`
    : (event.properties.path ?? (event.serverSide ? "server" : ""));
  const marker = h("span", { className: "marker", "aria-hidden": "true" });
  if (event.defined) marker.style.background = event.color;
  const properties = h(
    "dl",
    { className: "properties", id: `event-props-${n}`, hidden: true, "data-testid": "event-properties" },
    Object.entries(event.properties).map(([name, value]) => [h("dt", {}, name), h("dd", {}, text(value))]),
  );
  const kind = event.defined ? `defined event (raw ${event.type})` : "raw event";
  const main = h(
    "button",
    { type: "button", className: "event-main", "aria-expanded": "false", "aria-controls": properties.id },
    marker,
    h("span", { className: "name" }, event.name),
    event.isRageClick ? h("span", { className: "rage-label" }, svg("rage"), " Rage click") : null,
    h("span", { className: "detail" }, detail),
    h("span", { className: "sr-only" }, `, ${kind}`),
    h("time", { datetime: event.time, title: exact(event.time) }, clock(event.time)),
  );
  main.addEventListener("click", () => {
    properties.hidden = !properties.hidden;
    main.setAttribute("aria-expanded", String(!properties.hidden));
  });
  const item = h(
    "li",
    {
      className: `event ${event.defined ? "defined" : "raw"}${event.isRageClick ? " rage" : ""}`,
      "data-testid": "event-item",
      "data-defined": String(event.defined),
      "data-rage": String(event.isRageClick),
      "data-name": event.name,
      "data-definition-id": event.definition?.id,
    },
    h("div", { className: "event-line" }, main, event.defined ? null : defineButton(event, status, refresh)),
    properties,
  );
  return item;
}

function defineButton(event, status, refresh) {
  const button = h(
    "button",
    {
      type: "button",
      className: "define",
      "data-testid": "define-event",
      "aria-label": `Define this ${event.type} event`,
    },
    "Define",
  );
  button.addEventListener("click", () => {
    const line = button.parentElement;
    if (line.nextElementSibling?.matches("form"))
      return line.nextElementSibling.querySelector("input").focus();
    const form = defineForm(event, status, refresh, () => {
      form.remove();
      button.focus();
    });
    line.after(form);
    form.querySelector("input").focus();
  });
  return button;
}

let formIds = 0;
function defineForm(event, status, refresh, close) {
  const n = ++formIds;
  const suggestion = event.properties.target_text
    ? `Click ${event.properties.target_text}`
    : event.properties.path
      ? `${event.type} ${event.properties.path}`
      : event.type;
  const name = h("input", {
    id: `define-name-${n}`,
    required: true,
    maxlength: 200,
    value: suggestion,
    "data-testid": "define-event-name",
  });
  const color = h("input", {
    id: `define-color-${n}`,
    type: "color",
    value: PALETTE[n % PALETTE.length],
    "data-testid": "define-event-color",
  });
  const message = h("p", { className: "form-error", role: "alert" });
  const form = h(
    "form",
    { className: "define-form", "aria-label": "Define this event" },
    h("label", { for: name.id }, "Name"),
    name,
    h("label", { for: color.id }, "Colour"),
    color,
    h(
      "button",
      { type: "submit", className: "primary", "data-testid": "define-event-submit" },
      "Define event",
    ),
    h("button", { type: "button", onclick: close }, "Cancel"),
    h(
      "p",
      { className: "muted small" },
      `Matches every ${event.type} like this one (its path, target text and element), past and future.`,
    ),
    message,
  );
  form.addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    try {
      const input = { name: name.value.trim(), color: color.value, criteria: [], fromEventId: event.id };
      const result = (await gql(DEFINE, { input })).defineEvent;
      if (result.errors.length) {
        message.textContent = result.errors.map((e) => e.message).join("; ");
        return;
      }
      await refresh();
      const pane = document.querySelector(".events-pane .status");
      if (pane)
        pane.textContent = `Defined “${result.definition.name}”: matching events now show its name and colour.`;
    } catch (error) {
      message.textContent =
        error instanceof ApiError && error.code === "FORBIDDEN"
          ? "Defining events needs an admin API key; this tab's key may only read. Change it with “API key” above."
          : `Error: ${error.message}`;
    }
  });
  return form;
}
