// The users list: newest activity first (or sorted by a column header), a time filter,
// conditions, keyset paging, the total.
import { gql } from "./api.js";
import { filterForm, loadChoices, offerPropertyNames } from "./conditions.js";
import { ago, day, exact, fill, h, place, report, rowKeys, text } from "./dom.js";
import { describeSeen, highlightMatch, state, userFilter } from "./filters.js";

const PAGE = 25;
const USERS = `query Users($filter: UserFilter, $order: UserOrder, $first: Int, $after: String) {
  users(filter: $filter, orderBy: $order, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      id userId identity displayName lastSeen properties
      initialLocation { city region country }
      firstSession { startTime }
    } }
  }
}`;
// Properties Usertrail sets itself: the list shows the customer's own ones first.
const AUTOCAPTURED = /^(Initial |Date First Seen$|User ID$|Email$|Identity$)/;
const FALLBACK = ["Initial Browser", "Initial Country", "Initial Marketing Channel"];
// Sortable columns: the header's label, the order it asks for, and what the order is.
const SORTS = {
  FIRST_SEEN: ["First session", "first seen"],
  LAST_SEEN: ["Last seen", "last seen"],
};

/** Renders the users list into `main`. */
export async function usersView(main) {
  const rows = h("tbody");
  const summary = h("p", { className: "summary", role: "status" }, "Loading users…");
  const more = h("button", { type: "button", className: "more", hidden: true }, "Load more");
  const form = filterForm(() => load());
  const order = { field: "LAST_SEEN", direction: "DESC" };
  const caption = h("caption", { className: "sr-only" });
  const headers = Object.keys(SORTS).map((field) => sortHeader(field));
  function sortHeader(field) {
    const [label, meaning] = SORTS[field];
    const button = h("button", { type: "button", className: "sort", title: `Sort by ${meaning}` }, label);
    const th = h("th", { scope: "col", "data-sort": field }, button);
    button.addEventListener("click", () => {
      if (order.field === field) order.direction = order.direction === "DESC" ? "ASC" : "DESC";
      else Object.assign(order, { field, direction: "DESC" });
      showOrder();
      load().catch(report(summary));
    });
    return th;
  }
  function showOrder() {
    for (const th of headers) {
      const sorted = th.dataset.sort === order.field;
      th.setAttribute("aria-sort", sorted ? (order.direction === "DESC" ? "descending" : "ascending") : "none");
    }
    const [, meaning] = SORTS[order.field];
    caption.textContent = `Users by ${meaning}, ${order.direction === "DESC" ? "newest" : "oldest"} first`;
  }
  showOrder();
  const table = h(
    "table",
    { className: "list users" },
    caption,
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col" }, "User"),
        h("th", { scope: "col" }, "Properties"),
        ...headers,
        h("th", { scope: "col" }, h("span", { className: "sr-only" }, "Actions")),
      ),
    ),
    rows,
  );
  rows.addEventListener("keydown", rowKeys);
  rows.addEventListener("click", (event) => {
    const row = event.target.closest("tr");
    if (row && !event.target.closest("a, button")) row.querySelector("a")?.click();
  });
  fill(main, h("h1", { tabindex: "-1" }, "Users"), form, summary, table, more);

  let after = null;
  let shown = 0;
  async function load(next = false) {
    if (!next) {
      after = null;
      shown = 0;
      rows.replaceChildren();
    }
    more.disabled = true;
    summary.textContent = "Loading users…";
    const data = await gql(USERS, { filter: userFilter(), order, first: PAGE, after });
    const { edges, pageInfo, totalCount } = data.users;
    const highlight = highlightMatch();
    for (const { node } of edges) {
      rows.append(userRow(node, highlight));
      offerPropertyNames(Object.keys(node.properties));
    }
    shown += edges.length;
    after = pageInfo.endCursor;
    more.hidden = !pageInfo.hasNextPage;
    more.disabled = false;
    summary.textContent = `${totalCount} user${totalCount === 1 ? "" : "s"} seen ${describeSeen(state.seen)}${filtered() ? ", matching the filters" : ""}; showing ${shown}.`;
    if (!performance.getEntriesByName("first-users-list").length) performance.mark("first-users-list");
    if (!edges.length && !next)
      rows.append(h("tr", {}, h("td", { colspan: 5, className: "empty" }, "No users match.")));
  }
  more.addEventListener("click", () => load(true).catch(report(summary)));
  await load();
  loadChoices(form).catch(report(summary));
}

const filtered = () => state.properties.length || state.events.length || state.segmentId;

function userRow(user, highlight) {
  const own = Object.entries(user.properties).filter(([name]) => !AUTOCAPTURED.test(name));
  // An anonymous user often has none of its own: show where it came from instead.
  const captured = FALLBACK.filter((name) => name in user.properties).map((name) => [
    name,
    user.properties[name],
  ]);
  const shownProperties = (own.length ? own : captured).slice(0, 3);
  const location = place(user.initialLocation);
  const first = user.firstSession?.startTime;
  const actions = [
    h(
      "a",
      {
        href: `#/user/${encodeURIComponent(user.userId)}`,
        "aria-label": `View sessions of ${user.displayName}`,
      },
      "View sessions",
    ),
  ];
  if (highlight)
    actions.push(
      " · ",
      h(
        "a",
        {
          href: `#/user/${encodeURIComponent(user.userId)}?highlight=1`,
          "aria-label": `See all sessions of ${user.displayName}, matching ones highlighted`,
        },
        "See all sessions",
      ),
    );
  return h(
    "tr",
    { "data-testid": "user-row", "data-user-id": user.userId },
    h(
      "td",
      {},
      h(
        "span",
        { className: "who" },
        h("span", { className: "avatar", "aria-hidden": "true" }, initials(user.displayName)),
        h("strong", {}, user.displayName),
      ),
    ),
    h(
      "td",
      { className: "props" },
      shownProperties.length
        ? shownProperties.map(([name, value]) =>
            h("span", { className: "chip" }, h("span", { className: "chip-name" }, name), " ", text(value)),
          )
        : h("span", { className: "muted" }, "—"),
    ),
    h(
      "td",
      {},
      first
        ? h(
            "span",
            { title: location ? `First session in ${location}` : "Location unknown", className: "hover" },
            day(first),
          )
        : "—",
    ),
    h(
      "td",
      {},
      h(
        "time",
        { datetime: user.lastSeen, title: exact(user.lastSeen), className: "hover" },
        ago(user.lastSeen),
      ),
    ),
    h("td", { className: "actions" }, actions),
  );
}

function initials(name) {
  const letters = name
    .replace(/@.*/, "")
    .split(/[\s._-]+/)
    .filter(Boolean)
    .map((part) => part[0]);
  return (letters.slice(0, 2).join("") || "?").toUpperCase();
}
