// The Sessions page: newest first, filtered by event and by user, its limitations in words.
import { gql } from "./api.js";
import { fill, h, report, rowKeys } from "./dom.js";
import { eventMatch, propertyCondition as userFilterProperties } from "./filters.js";
import { sessionRow } from "./user.js";
import { choices, fillEventChoices, loadChoices, propertyRow } from "./conditions.js";

const SESSIONS = `query Sessions($filter: SessionFilter, $after: String) {
  sessions(filter: $filter, first: 25, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node {
      id source origin platform browser deviceType replayAvailable durationSeconds eventCount
      startTime hasRageClick location { city region country }
      user { userId displayName }
    } }
  }
}`;
const state = {
  lastDays: 7,
  event: "",
  user: "",
  userProperty: { property: "", op: "EQUALS", value: "" },
  includeServerOnly: false,
};

/** Renders the Sessions page into `main`. */
export async function sessionsView(main) {
  const lastDays = h("input", {
    type: "number",
    id: "sessions-days",
    min: 1,
    value: state.lastDays,
    className: "narrow",
  });
  const event = h("select", {
    id: "sessions-event",
    className: "event-choice",
    "data-testid": "sessions-event",
  });
  const user = h("input", {
    id: "sessions-user",
    value: state.user,
    placeholder: "user id or identity",
    "data-testid": "sessions-user",
  });
  const serverOnly = h("input", {
    type: "checkbox",
    id: "sessions-server-only",
    checked: state.includeServerOnly,
    "data-testid": "include-server-only",
  });
  const notice = h("p", { className: "note", "data-testid": "sessions-limitation" });
  const summary = h("p", { className: "summary", role: "status" }, "Loading sessions…");
  const list = h("ul", { className: "sessions wide", "aria-label": "Sessions, newest first" });
  const more = h("button", { type: "button", className: "more", hidden: true }, "Load more");
  const form = h(
    "form",
    { className: "filters", "aria-label": "Filter sessions" },
    h(
      "fieldset",
      { className: "time" },
      h("legend", {}, "Sessions"),
      h("label", { for: "sessions-days" }, "In the last"),
      lastDays,
      h("span", {}, "days"),
      h("label", { for: "sessions-event" }, "with event"),
      event,
      h("label", { for: "sessions-user" }, "of user"),
      user,
      h(
        "span",
        { className: "condition inline", "data-testid": "sessions-user-property" },
        h("span", { className: "kind" }, "whose"),
        propertyRow(state.userProperty, null, { legend: "User property", example: "plan" }),
      ),
      h(
        "span",
        { className: "check" },
        serverOnly,
        h("label", { for: "sessions-server-only" }, "Include server-only sessions"),
      ),
      h("button", { type: "submit", className: "primary" }, "Apply"),
    ),
  );
  fill(main, h("h1", { tabindex: "-1" }, "Sessions"), form, notice, summary, list, more);
  fillEventChoices(event, state.event);
  event.options[0].textContent = "any event";
  list.addEventListener("keydown", rowKeys);

  let after = null;
  const load = async (next = false) => {
    if (!next) {
      after = null;
      list.replaceChildren();
    }
    notice.textContent = limitation();
    notice.hidden = !notice.textContent;
    const data = await gql(SESSIONS, { filter: sessionFilter(), after });
    const { edges, pageInfo, totalCount } = data.sessions;
    for (const { node } of edges) {
      const href = `#/user/${encodeURIComponent(node.user.userId)}?session=${encodeURIComponent(node.id)}`;
      const row = sessionRow(node, () => {
        location.hash = href;
      });
      row.querySelector("button").prepend(h("span", { className: "session-user" }, node.user.displayName));
      list.append(row);
    }
    after = pageInfo.endCursor;
    more.hidden = !pageInfo.hasNextPage;
    summary.textContent = `${totalCount} session${totalCount === 1 ? "" : "s"}; showing ${list.children.length}.`;
  };
  form.addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    Object.assign(state, {
      lastDays: Number(lastDays.value) || 7,
      event: event.value,
      user: user.value.trim(),
      includeServerOnly: serverOnly.checked,
    });
    load().catch(report(summary));
  });
  serverOnly.addEventListener("change", () => form.requestSubmit());
  more.addEventListener("click", () => load(true).catch(report(summary)));
  await load();
  if (!choices) {
    await loadChoices(form).catch(report(summary));
    fillEventChoices(event, state.event);
    event.options[0].textContent = "any event";
  }
}

function sessionFilter() {
  const filter = { time: { lastDays: state.lastDays }, includeServerOnly: state.includeServerOnly };
  if (state.event) filter.event = eventMatch({ event: state.event });
  if (state.user) filter[/^\d+$/.test(state.user) ? "userId" : "identity"] = state.user;
  const { property, op, value } = state.userProperty;
  if (property.trim()) filter.userProperties = userFilterProperties({ property, op, value });
  return filter;
}

/** The documented limitations (SPEC §6) that apply to the current filter, in words. */
function limitation() {
  if (state.user)
    return "Filtering by one user lists all of that user's sessions, client-side and server-only alike.";
  const by = [state.event && "an event", state.userProperty.property.trim() && "user properties"].filter(
    Boolean,
  );
  if (by.length && !state.includeServerOnly) {
    return `Filtering by ${by.join(" and ")} lists only sessions that started client-side: server-side events sent outside a visit (server-only sessions) are not listed. Tick “Include server-only sessions” to list those too.`;
  }
  if (by.length) return "Server-only sessions are included.";
  return "";
}
