// One user: sessions newest first, a session's events (define a raw one), "About this user".
import { ApiError, gql } from "./api.js";
import { clock, day, debounce, duration, exact, fill, h, place, text } from "./dom.js";
import { highlightMatch } from "./filters.js";
import { labelled, sessionIcons, svg } from "./icons.js";
import { report, rowKeys } from "./users.js";

const SESSION_FIELDS = `id source origin platform browser deviceType replayAvailable
  durationSeconds eventCount startTime hasRageClick highlighted
  location { city region country } landingPage`;
const USER = `query User($userId: String!, $highlight: EventMatch, $after: String) {
  user(userId: $userId) {
    id userId identity displayName firstSeen lastSeen sessionCount eventCount
    initialLocation { city region country }
    sessions(first: 20, after: $after, highlight: $highlight) {
      totalCount pageInfo { hasNextPage endCursor }
      edges { node { ${SESSION_FIELDS} } }
    }
  }
}`;
const PROPERTIES = `query Properties($userId: String!, $search: String) {
  user(userId: $userId) { propertyList(search: $search) { name value autocaptured } }
}`;
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

/** Renders the user `userId` into `main`; `params` may ask to highlight or open a session. */
export async function userView(main, userId, params) {
  const highlight = params.get("highlight") ? highlightMatch() : null;
  const data = await gql(USER, { userId, highlight });
  const user = data.user;
  if (!user) {
    fill(main, h("h1", { tabindex: "-1" }, "No such user"), h("p", {}, `No user has the id ${userId}. `, h("a", { href: "#/" }, "Back to users")));
    return;
  }
  const sessions = h("ul", { className: "sessions", "aria-label": "Sessions, newest first" });
  const more = h("button", { type: "button", className: "more", hidden: !user.sessions.pageInfo.hasNextPage }, "Load more sessions");
  const events = h("section", { className: "events-pane", "aria-labelledby": "events-heading" },
    h("h2", { id: "events-heading" }, "Events"), h("p", { className: "muted" }, "Choose a session to see its events."));
  const location = place(user.initialLocation);
  fill(main,
    h("p", { className: "crumbs" }, h("a", { href: "#/" }, "← Users")),
    h("h1", { tabindex: "-1" }, user.displayName),
    h("p", { className: "meta" },
      `User ${user.userId} · first seen `, h("time", { title: exact(user.firstSeen), datetime: user.firstSeen }, day(user.firstSeen)),
      location ? ` in ${location}` : "", " · last seen ", h("time", { title: exact(user.lastSeen), datetime: user.lastSeen }, day(user.lastSeen)),
      ` · ${user.sessionCount} sessions · ${user.eventCount} events`),
    h("div", { className: "user-grid" },
      h("section", { className: "sessions-pane", "aria-labelledby": "sessions-heading" },
        h("h2", { id: "sessions-heading" }, `Sessions (${user.sessions.totalCount})`),
        highlight ? h("p", { className: "note", "data-testid": "highlight-note" }, "Sessions with an event the users filter asks for are highlighted.") : null,
        sessions, more),
      events,
      aboutUser(user.userId)));

  const open = (session, row) => {
    for (const other of sessions.querySelectorAll("[aria-current]")) other.removeAttribute("aria-current");
    row.querySelector("button").setAttribute("aria-current", "true");
    showEvents(events, session).catch(report(events));
  };
  const add = (edges) => {
    for (const { node } of edges) {
      const row = sessionRow(node, () => open(node, row));
      sessions.append(row);
    }
  };
  add(user.sessions.edges);
  sessions.addEventListener("keydown", rowKeys);
  let after = user.sessions.pageInfo.endCursor;
  more.addEventListener("click", async () => {
    const next = await gql(USER, { userId, highlight, after }).catch(report(more));
    if (!next) return;
    add(next.user.sessions.edges);
    after = next.user.sessions.pageInfo.endCursor;
    more.hidden = !next.user.sessions.pageInfo.hasNextPage;
  });
  const wanted = params.get("session");
  const first = [...sessions.children].find((row) => row.dataset.sessionId === wanted) ?? sessions.firstElementChild;
  first?.querySelector("button").click();
}

/** A session: device and browser icons, start, duration, event count, replay and rage marks. */
export function sessionRow(session, onOpen) {
  const where = place(session.location);
  const button = h("button", { type: "button", className: "session", onclick: onOpen },
    sessionIcons(session),
    h("span", { className: "when" }, h("time", { datetime: session.startTime, title: exact(session.startTime) }, `${day(session.startTime)}, ${clock(session.startTime)}`),
      where ? h("span", { className: "muted place" }, where) : null),
    h("span", { className: "stats" }, `${duration(session.durationSeconds)} · ${session.eventCount} event${session.eventCount === 1 ? "" : "s"}`),
    session.replayAvailable ? labelled("play", "Replay available", "play") : null,
    session.hasRageClick ? labelled("rage", "Has a rage click", "rage-mark") : null,
    session.highlighted ? h("span", { className: "match" }, "matches") : null);
  return h("li", { "data-testid": "session-row", "data-session-id": session.id, "data-highlighted": String(session.highlighted ?? false), className: session.highlighted ? "highlighted" : "" }, button);
}

async function showEvents(pane, session) {
  fill(pane, h("h2", { id: "events-heading" }, "Events"), h("p", { className: "muted", role: "status" }, "Loading events…"));
  const data = await gql(EVENTS, { id: session.id });
  const node = data.node;
  if (!node) {
    fill(pane, h("h2", { id: "events-heading" }, "Events"), h("p", {}, "This session no longer exists (the user was merged); reload the user."));
    return;
  }
  const list = h("ol", { className: "events", "aria-label": "Events, oldest first" });
  const status = h("p", { className: "status", role: "status" });
  const frequent = h("ul", { className: "frequent", "aria-label": "Most frequent events" },
    node.mostFrequentEvents.map((f) => frequentItem(f, list)));
  for (const { node: event } of node.events.edges) list.append(eventItem(event, status, () => showEvents(pane, session)));
  list.addEventListener("keydown", rowKeys);
  const shown = node.events.edges.length;
  fill(pane,
    h("h2", { id: "events-heading" }, `Events (${node.events.totalCount})`),
    h("h3", {}, "Most frequent events"), frequent,
    status, list,
    node.events.pageInfo.hasNextPage ? h("p", { className: "muted" }, `The first ${shown} events are shown.`) : null);
}

function frequentItem(frequency, list) {
  const matches = (item) => frequency.definition
    ? item.dataset.definitionId === frequency.definition.id
    : item.dataset.defined === "false" && item.dataset.name === frequency.name;
  const mark = (on) => {
    for (const item of list.children) item.classList.toggle("hl", on && matches(item));
  };
  const marker = h("span", { className: "marker" });
  if (frequency.definition) marker.style.background = frequency.definition.color;
  const chip = h("button", { type: "button", className: `freq ${frequency.definition ? "" : "raw"}`, "data-testid": "frequent-event", title: "Highlights its instances below" },
    marker, frequency.name, h("span", { className: "count" }, String(frequency.count)), h("span", { className: "sr-only" }, " times"));
  for (const [type, on] of [["mouseenter", true], ["mouseleave", false], ["focus", true], ["blur", false]]) chip.addEventListener(type, () => mark(on));
  return h("li", {}, chip);
}

let eventIds = 0;
function eventItem(event, status, refresh) {
  const n = ++eventIds;
  const detail = event.properties.target_text ? `“${event.properties.target_text}”` : event.properties.path ?? (event.serverSide ? "server" : "");
  const marker = h("span", { className: "marker", "aria-hidden": "true" });
  if (event.defined) marker.style.background = event.color;
  const properties = h("dl", { className: "properties", id: `event-props-${n}`, hidden: true, "data-testid": "event-properties" },
    Object.entries(event.properties).map(([name, value]) => [h("dt", {}, name), h("dd", {}, text(value))]));
  const kind = event.defined ? `defined event (raw ${event.type})` : "raw event";
  const main = h("button", { type: "button", className: "event-main", "aria-expanded": "false", "aria-controls": properties.id },
    marker,
    h("span", { className: "name" }, event.name),
    event.isRageClick ? h("span", { className: "rage-label" }, svg("rage"), " Rage click") : null,
    h("span", { className: "detail" }, detail),
    h("span", { className: "sr-only" }, `, ${kind}`),
    h("time", { datetime: event.time, title: exact(event.time) }, clock(event.time)));
  main.addEventListener("click", () => {
    properties.hidden = !properties.hidden;
    main.setAttribute("aria-expanded", String(!properties.hidden));
  });
  const item = h("li", {
    className: `event ${event.defined ? "defined" : "raw"}${event.isRageClick ? " rage" : ""}`,
    "data-testid": "event-item", "data-defined": String(event.defined), "data-rage": String(event.isRageClick),
    "data-name": event.name, "data-definition-id": event.definition?.id,
  }, h("div", { className: "event-line" }, main, event.defined ? null : defineButton(event, status, refresh)), properties);
  return item;
}

function defineButton(event, status, refresh) {
  const button = h("button", { type: "button", className: "define", "data-testid": "define-event", "aria-label": `Define this ${event.type} event` }, "Define");
  button.addEventListener("click", () => {
    const line = button.parentElement;
    if (line.nextElementSibling?.matches("form")) return line.nextElementSibling.querySelector("input").focus();
    const form = defineForm(event, status, refresh, () => { form.remove(); button.focus(); });
    line.after(form);
    form.querySelector("input").focus();
  });
  return button;
}

let formIds = 0;
function defineForm(event, status, refresh, close) {
  const n = ++formIds;
  const suggestion = event.properties.target_text ? `Click ${event.properties.target_text}` : event.properties.path ? `${event.type} ${event.properties.path}` : event.type;
  const name = h("input", { id: `define-name-${n}`, required: true, maxlength: 200, value: suggestion, "data-testid": "define-event-name" });
  const color = h("input", { id: `define-color-${n}`, type: "color", value: PALETTE[n % PALETTE.length], "data-testid": "define-event-color" });
  const message = h("p", { className: "form-error", role: "alert" });
  const form = h("form", { className: "define-form", "aria-label": "Define this event" },
    h("label", { for: name.id }, "Name"), name,
    h("label", { for: color.id }, "Colour"), color,
    h("button", { type: "submit", className: "primary", "data-testid": "define-event-submit" }, "Define event"),
    h("button", { type: "button", onclick: close }, "Cancel"),
    h("p", { className: "muted small" }, `Matches every ${event.type} like this one (its path, target text and element), past and future.`),
    message);
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
      if (pane) pane.textContent = `Defined “${result.definition.name}”: matching events now show its name and colour.`;
    } catch (error) {
      message.textContent = error instanceof ApiError && error.code === "FORBIDDEN"
        ? "Defining events needs an admin API key; this tab's key may only read. Change it with “API key” above."
        : `Error: ${error.message}`;
    }
  });
  return form;
}

function aboutUser(userId) {
  const search = h("input", { type: "search", id: "property-search", "data-testid": "property-search", placeholder: "Search properties" });
  const list = h("div", { className: "about", "aria-live": "polite" });
  const load = async () => {
    const data = await gql(PROPERTIES, { userId, search: search.value.trim() || null });
    const found = data.user?.propertyList ?? [];
    fill(list, found.length ? h("dl", {}, found.map((p) => h("div", { className: `property${p.autocaptured ? " auto" : ""}`, "data-testid": "property-item" },
      h("dt", {}, p.name), h("dd", {}, text(p.value)))))
      : h("p", { className: "muted" }, "No property matches."));
  };
  search.addEventListener("input", debounce(() => load().catch(report(list))));
  load().catch(report(list));
  return h("aside", { className: "about-pane", "aria-labelledby": "about-heading" },
    h("h2", { id: "about-heading" }, "About this user"),
    h("label", { for: "property-search", className: "search" }, svg("search"), h("span", { className: "sr-only" }, "Search properties"), search),
    list);
}
