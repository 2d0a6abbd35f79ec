// The Live view: events as they are stored (the liveEvents subscription), newest first.
import { apiKey } from "./api.js";
import { clock, exact, fill, h, rowKeys } from "./dom.js";
import { subscribe } from "./live_socket.js";

const LIVE = `subscription Live($filter: LiveEventFilter) {
  liveEvents(filter: $filter) {
    dropped
    event { id type name serverSide source time properties
      user { userId displayName } session { id } }
  }
}`;
// Events kept on the page: older ones leave the list as new ones arrive.
const SHOWN = 200;
const state = { type: "", user: "", on: false };
let stop = null;

/** Ends the view's subscription (when the page moves to another view). */
export function stopLive() {
  stop?.();
  stop = null;
}

/** Renders the Live view into `main`. */
export async function liveView(main) {
  const toggle = h(
    "button",
    { type: "button", className: "primary", "aria-pressed": "false", "data-testid": "live-toggle" },
    "Live",
  );
  const type = h("input", { id: "live-type", value: state.type, placeholder: "any event type" });
  const user = h("input", { id: "live-user", value: state.user, placeholder: "user id or identity" });
  const status = h("p", { className: "summary", role: "status", "data-testid": "live-status" });
  const list = h("ol", { className: "events live", "aria-label": "Live events, newest first" });
  const form = h(
    "form",
    { className: "filters", "aria-label": "Filter live events" },
    h(
      "fieldset",
      {},
      h("legend", {}, "Events"),
      h("label", { for: "live-type" }, "of type"),
      type,
      h("label", { for: "live-user" }, "of user"),
      user,
      h("button", { type: "submit" }, "Apply"),
    ),
  );
  fill(
    main,
    h("h1", { tabindex: "-1" }, "Live events"),
    h("p", { className: "note" }, "Events appear here as they are stored, newest first."),
    form,
    toggle,
    status,
    list,
  );
  list.addEventListener("keydown", rowKeys);
  let received = 0;
  let dropped = 0;
  const show = (text) => {
    status.textContent = text;
    status.classList.remove("error");
  };
  const start = () => {
    stopLive();
    received = 0;
    dropped = 0;
    show("Connecting…");
    stop = subscribe({
      query: LIVE,
      variables: { filter: liveFilter() },
      key: apiKey(),
      onOpen: () => show("Live: waiting for events…"),
      onNext: ({ liveEvents }) => {
        dropped += liveEvents.dropped;
        if (liveEvents.event) {
          received += 1;
          list.prepend(eventRow(liveEvents.event));
          while (list.children.length > SHOWN) list.lastElementChild.remove();
        }
        const lost = dropped ? `; ${dropped} dropped (the page fell behind)` : "";
        show(`Live: ${received} event${received === 1 ? "" : "s"} received${lost}.`);
      },
      onError: (message) => {
        status.textContent = `Error: ${message}`;
        status.classList.add("error");
      },
      onClosed: (code) => {
        setOn(false);
        stop = null;
        if (code === 4403) window.dispatchEvent(new CustomEvent("usertrail:needs-key"));
        else show("The connection closed; press Live to stream again.");
      },
    });
  };
  const setOn = (on) => {
    state.on = on;
    toggle.setAttribute("aria-pressed", String(on));
  };
  toggle.addEventListener("click", () => {
    if (state.on) {
      stopLive();
      setOn(false);
      show("Paused.");
    } else {
      setOn(true);
      start();
    }
  });
  form.addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    state.type = type.value.trim();
    state.user = user.value.trim();
    list.replaceChildren();
    if (state.on) start();
  });
  show("Paused: press Live to stream events as they arrive.");
  if (state.on) start();
}

function liveFilter() {
  const filter = {};
  if (state.type) filter.type = state.type;
  if (state.user) filter[/^\d+$/.test(state.user) ? "userId" : "identity"] = state.user;
  return filter;
}

function eventRow(event) {
  const href = `#/user/${encodeURIComponent(event.user.userId)}?session=${encodeURIComponent(event.session.id)}`;
  const detail = event.properties.path ?? (event.serverSide ? "server" : event.source.toLowerCase());
  return h(
    "li",
    { className: "event live-event", "data-testid": "live-event", "data-event-id": event.id },
    h("time", { datetime: event.time, title: exact(event.time) }, clock(event.time)),
    h("span", { className: "name" }, event.name),
    h("span", { className: "detail" }, detail),
    h("a", { href }, event.user.displayName),
  );
}
