// One user: sessions newest first, a session's events (define a raw one), "About this user".
import { gql } from "./api.js";
import { clock, day, debounce, duration, exact, fill, h, place, report, rowKeys, text } from "./dom.js";
import { showEvents } from "./events.js";
import { highlightMatch } from "./filters.js";
import { labelled, sessionIcons, svg } from "./icons.js";

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
/** Renders the user `userId` into `main`; `params` may ask to highlight or open a session. */
export async function userView(main, userId, params) {
  const highlight = params.get("highlight") ? highlightMatch() : null;
  const data = await gql(USER, { userId, highlight });
  const user = data.user;
  if (!user) {
    fill(
      main,
      h("h1", { tabindex: "-1" }, "No such user"),
      h("p", {}, `No user has the id ${userId}. `, h("a", { href: "#/" }, "Back to users")),
    );
    return;
  }
  const sessions = h("ul", { className: "sessions", "aria-label": "Sessions, newest first" });
  const more = h(
    "button",
    { type: "button", className: "more", hidden: !user.sessions.pageInfo.hasNextPage },
    "Load more sessions",
  );
  const events = h(
    "section",
    { className: "events-pane", "aria-labelledby": "events-heading" },
    h("h2", { id: "events-heading" }, "Events"),
    h("p", { className: "muted" }, "Choose a session to see its events."),
  );
  const location = place(user.initialLocation);
  fill(
    main,
    h("p", { className: "crumbs" }, h("a", { href: "#/" }, "← Users")),
    h("h1", { tabindex: "-1" }, user.displayName),
    h(
      "p",
      { className: "meta" },
      `User ${user.userId} · first seen `,
      h("time", { title: exact(user.firstSeen), datetime: user.firstSeen }, day(user.firstSeen)),
      location ? ` in ${location}` : "",
      " · last seen ",
      h("time", { title: exact(user.lastSeen), datetime: user.lastSeen }, day(user.lastSeen)),
      ` · ${user.sessionCount} sessions · ${user.eventCount} events`,
    ),
    h(
      "div",
      { className: "user-grid" },
      h(
        "section",
        { className: "sessions-pane", "aria-labelledby": "sessions-heading" },
        h("h2", { id: "sessions-heading" }, `Sessions (${user.sessions.totalCount})`),
        highlight
          ? h(
              "p",
              { className: "note", "data-testid": "highlight-note" },
              "Sessions with an event the users filter asks for are highlighted.",
            )
          : null,
        sessions,
        more,
      ),
      events,
      aboutUser(user.userId),
    ),
  );

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
  const first =
    [...sessions.children].find((row) => row.dataset.sessionId === wanted) ?? sessions.firstElementChild;
  first?.querySelector("button").click();
}

/** A session: device and browser icons, start, duration, event count, replay and rage marks. */
export function sessionRow(session, onOpen) {
  const where = place(session.location);
  const button = h(
    "button",
    { type: "button", className: "session", onclick: onOpen },
    sessionIcons(session),
    h(
      "span",
      { className: "when" },
      h(
        "time",
        { datetime: session.startTime, title: exact(session.startTime) },
        `${day(session.startTime)}, ${clock(session.startTime)}`,
      ),
      where ? h("span", { className: "muted place" }, where) : null,
    ),
    h(
      "span",
      { className: "stats" },
      `${duration(session.durationSeconds)} · ${session.eventCount} event${session.eventCount === 1 ? "" : "s"}`,
    ),
    session.replayAvailable ? labelled("play", "Replay available", "play") : null,
    session.hasRageClick ? labelled("rage", "Has a rage click", "rage-mark") : null,
    session.highlighted ? h("span", { className: "match" }, "matches") : null,
  );
  return h(
    "li",
    {
      "data-testid": "session-row",
      "data-session-id": session.id,
      "data-highlighted": String(session.highlighted ?? false),
      className: session.highlighted ? "highlighted" : "",
    },
    button,
  );
}

function aboutUser(userId) {
  const search = h("input", {
    type: "search",
    id: "property-search",
    "data-testid": "property-search",
    placeholder: "Search properties",
  });
  const list = h("div", { className: "about", "aria-live": "polite" });
  const load = async () => {
    const data = await gql(PROPERTIES, { userId, search: search.value.trim() || null });
    const found = data.user?.propertyList ?? [];
    fill(
      list,
      found.length
        ? h(
            "dl",
            {},
            found.map((p) =>
              h(
                "div",
                { className: `property${p.autocaptured ? " auto" : ""}`, "data-testid": "property-item" },
                h("dt", {}, p.name),
                h("dd", {}, text(p.value)),
              ),
            ),
          )
        : h("p", { className: "muted" }, "No property matches."),
    );
  };
  search.addEventListener(
    "input",
    debounce(() => load().catch(report(list))),
  );
  load().catch(report(list));
  return h(
    "aside",
    { className: "about-pane", "aria-labelledby": "about-heading" },
    h("h2", { id: "about-heading" }, "About this user"),
    h(
      "label",
      { for: "property-search", className: "search" },
      svg("search"),
      h("span", { className: "sr-only" }, "Search properties"),
      search,
    ),
    list,
  );
}
