// The Users & Sessions page: a hash router over three views, and the API key gate.
import { ApiError, NeedsKey, apiKey, forgetKey, rememberKey } from "./api.js";
import { fill, h } from "./dom.js";
import { liveView, stopLive } from "./live.js";
import { sessionsView } from "./sessions.js";
import { userView } from "./user.js";
import { usersView } from "./users.js";

const main = document.getElementById("main");
const keyButton = document.getElementById("key-button");

function parse() {
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  return { parts: path.split("/").filter(Boolean), params: new URLSearchParams(query) };
}

async function route() {
  const { parts, params } = parse();
  for (const link of document.querySelectorAll("nav a[data-view]")) {
    const current = link.dataset.view === (parts[0] ?? "users");
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  keyButton.hidden = !apiKey();
  stopLive();
  main.setAttribute("aria-busy", "true");
  try {
    if (parts[0] === "user" && parts[1]) await userView(main, decodeURIComponent(parts[1]), params);
    else if (parts[0] === "sessions") await sessionsView(main);
    else if (parts[0] === "live") await liveView(main);
    else await usersView(main);
    main.querySelector("h1")?.focus({ preventScroll: true });
  } catch (error) {
    if (error instanceof NeedsKey) askForKey(error.message);
    else showError(error);
  } finally {
    main.removeAttribute("aria-busy");
  }
}

function showError(error) {
  const why = error instanceof ApiError ? error.message : `${error.name}: ${error.message}`;
  fill(
    main,
    h("h1", { tabindex: "-1" }, "Something went wrong"),
    h("p", { className: "error", role: "alert" }, why),
    h("p", {}, h("a", { href: "#/" }, "Back to users")),
  );
}

/** Outside dev mode the API answers 401 without a key: ask for one, keep it for this tab. */
function askForKey(reason) {
  const input = h("input", {
    id: "api-key",
    type: "password",
    autocomplete: "off",
    required: true,
    "data-testid": "api-key",
  });
  const form = h(
    "form",
    { className: "key-form" },
    h("label", { for: "api-key" }, "API key"),
    input,
    h("button", { type: "submit", className: "primary", "data-testid": "api-key-submit" }, "Use this key"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    rememberKey(input.value);
    route();
  });
  fill(
    main,
    h("h1", { tabindex: "-1" }, "An API key is needed"),
    h(
      "p",
      {},
      "This server is not in dev mode, so its API needs a key (made with ",
      h("code", {}, "usertrail key create"),
      "). A read key shows users and sessions; defining events needs an admin key. The key is kept for this browser tab only, and forgotten when it closes.",
    ),
    apiKey() ? h("p", { className: "error", role: "alert" }, `The key was refused: ${reason}`) : null,
    form,
  );
  forgetKey();
  keyButton.hidden = true;
  input.focus();
}

keyButton.addEventListener("click", () => {
  forgetKey();
  askForKey("");
});
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault(); // the hash is the router's: focus the content instead
  main.focus();
});
window.addEventListener("usertrail:needs-key", () => askForKey("an API key is needed"));
window.addEventListener("hashchange", route);
route();
