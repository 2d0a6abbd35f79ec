// The users filter's form: time range, property and event conditions, segments.
import { gql } from "./api.js";
import { fill, h, report } from "./dom.js";
import { OPERATORS, needsValue, state, userFilter } from "./filters.js";

const SAVE_SEGMENT = `mutation Save($input: SegmentInput!) {
  createSegment(input: $input) { segment { id name userCount } errors { field message } }
}`;
const CHOICES = `query Choices { eventNames { type serverSide count } eventDefinitions { id name } segments { id name userCount } }`;
let choices = null;
// Names offered in the property inputs: the API's own, then those seen on listed users.
const propertyNames = new Set(["identity", "userId", "email"]);

// Properties web autocapture records on every event, offered in an event condition's "where".
const EVENT_PROPERTIES = ["path", "target_text", "domain", "href", "title", "hierarchy"];

/** Offers `names` (properties seen on listed users) in the property inputs. */
export function offerPropertyNames(names) {
  for (const name of names) propertyNames.add(name);
  namesList();
}

function namesList() {
  const list =
    document.getElementById("property-names") ??
    document.body.appendChild(h("datalist", { id: "property-names" }));
  fill(
    list,
    [...propertyNames].map((name) => h("option", { value: name })),
  );
  if (!document.getElementById("event-property-names")) {
    document.body.append(
      h(
        "datalist",
        { id: "event-property-names" },
        EVENT_PROPERTIES.map((name) => h("option", { value: name })),
      ),
    );
  }
}

/** The users filter form; `apply` reloads the list with the filter it leaves in `state`. */
export function filterForm(apply) {
  const form = h("form", { className: "filters", "aria-label": "Filter users" });
  const conditions = h("div", { className: "conditions" });
  const lastDays = h("input", {
    type: "number",
    min: 1,
    max: 3650,
    id: "seen-days",
    value: state.seen.lastDays ?? 7,
    className: "narrow",
  });
  const from = h("input", { type: "date", id: "seen-from", value: state.seen.from ?? "" });
  const to = h("input", { type: "date", id: "seen-to", value: state.seen.to ?? "" });
  const mode = h(
    "select",
    { id: "seen-mode" },
    h("option", { value: "last" }, "In the last"),
    h("option", { value: "between" }, "Between"),
  );
  mode.value = state.seen.lastDays ? "last" : "between";
  const lastPart = h("span", { className: "last-part" }, lastDays, h("label", { for: "seen-days" }, " days"));
  const betweenPart = h(
    "span",
    { className: "between-part" },
    h("label", { for: "seen-from", className: "sr-only" }, "From"),
    from,
    " and ",
    h("label", { for: "seen-to", className: "sr-only" }, "To"),
    to,
  );
  const sync = () => {
    lastPart.hidden = mode.value !== "last";
    betweenPart.hidden = mode.value === "last";
  };
  sync();
  mode.addEventListener("change", sync);
  const segment = h(
    "select",
    { id: "segment", "data-testid": "segment-select" },
    h("option", { value: "" }, "All users"),
  );
  const time = h(
    "fieldset",
    { className: "time" },
    h("legend", {}, "Seen"),
    h("label", { for: "seen-mode", className: "sr-only" }, "Time range"),
    mode,
    lastPart,
    betweenPart,
    h("label", { for: "segment" }, "Segment"),
    segment,
  );

  const redraw = () =>
    fill(
      conditions,
      state.properties.map((c, i) =>
        propertyRow(c, () => {
          state.properties.splice(i, 1);
          redraw();
        }),
      ),
      state.events.map((c, i) =>
        eventRow(c, () => {
          state.events.splice(i, 1);
          redraw();
        }),
      ),
    );
  redraw();
  const addProperty = h(
    "button",
    {
      type: "button",
      "data-testid": "add-property-filter",
      onclick: () => {
        state.properties.push({ property: "", op: "CONTAINS", value: "" });
        redraw();
        conditions.querySelector(".condition:nth-last-child(1) input")?.focus();
      },
    },
    "+ User property",
  );
  const addEvent = h(
    "button",
    {
      type: "button",
      "data-testid": "add-event-filter",
      onclick: () => {
        state.events.push({
          did: true,
          event: "",
          where: { property: "", op: "EQUALS", value: "" },
          atLeast: 1,
          lastDays: "",
        });
        redraw();
        conditions.querySelector(".condition:nth-last-child(1) select")?.focus();
      },
    },
    "+ Did event",
  );
  const submit = h(
    "button",
    { type: "submit", className: "primary", "data-testid": "apply-filters" },
    "Apply",
  );
  const save = h("button", { type: "button", "data-testid": "save-segment" }, "Save as segment…");
  const saving = saveSegmentForm(segment, () => {
    saving.hidden = true;
    save.focus();
  });
  save.addEventListener("click", () => {
    saving.hidden = false;
    saving.querySelector("input").focus();
  });
  form.append(
    time,
    conditions,
    h("div", { className: "buttons" }, addProperty, addEvent, submit, save),
    saving,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    state.seen =
      mode.value === "last" ? { lastDays: Number(lastDays.value) || 7 } : { from: from.value, to: to.value };
    state.segmentId = segment.value;
    apply().catch(report(form.parentElement.querySelector(".summary")));
  });
  for (const control of [mode, segment])
    control.addEventListener("change", () => {
      if (control === segment || mode.value === "last") form.requestSubmit();
    });
  return form;
}

/** Saves the applied filter as a segment (createSegment) and offers it in the list. */
function saveSegmentForm(segment, close) {
  const name = h("input", { id: "segment-name", "data-testid": "segment-name", maxlength: 200 });
  const message = h("span", { role: "status", className: "muted" });
  const box = h(
    "div",
    { className: "save-segment", hidden: true },
    h("label", { for: "segment-name" }, "Segment name"),
    name,
    h(
      "button",
      {
        type: "button",
        className: "primary",
        "data-testid": "save-segment-submit",
        onclick: async () => {
          try {
            const filter = userFilter();
            delete filter.segmentId; // a segment of a segment would tie the two together
            const result = (await gql(SAVE_SEGMENT, { input: { name: name.value.trim(), filter } }))
              .createSegment;
            if (result.errors.length) {
              message.textContent = result.errors.map((e) => e.message).join("; ");
              return;
            }
            const saved = result.segment;
            segment.append(h("option", { value: saved.id }, `${saved.name} (${saved.userCount})`));
            message.textContent = `Saved “${saved.name}”: ${saved.userCount} users now.`;
          } catch (error) {
            message.textContent = `Error: ${error.message}`;
          }
        },
      },
      "Save",
    ),
    h("button", { type: "button", onclick: close }, "Close"),
    message,
  );
  return box;
}

function operatorSelect(condition, id) {
  const select = h(
    "select",
    { id, "aria-label": "Operator" },
    OPERATORS.map(([op, label]) => h("option", { value: op }, label)),
  );
  select.value = condition.op;
  return select;
}

let ids = 0;
function propertyRow(
  condition,
  remove,
  {
    legend = "User property",
    testid = "property-condition",
    names = "property-names",
    example = "identity",
  } = {},
) {
  const n = ++ids;
  const property = h("input", {
    id: `prop-${n}`,
    list: names,
    value: condition.property,
    placeholder: example,
    "data-testid": "condition-property",
  });
  const op = operatorSelect(condition, `op-${n}`);
  const value = h("input", {
    id: `value-${n}`,
    value: condition.value,
    placeholder: "value",
    "data-testid": "condition-value",
    hidden: !needsValue(condition.op),
  });
  property.addEventListener("input", () => {
    condition.property = property.value;
  });
  op.addEventListener("change", () => {
    condition.op = op.value;
    value.hidden = !needsValue(op.value);
  });
  value.addEventListener("input", () => {
    condition.value = value.value;
  });
  const parts = [
    h("label", { for: `prop-${n}`, className: "sr-only" }, `${legend} name`),
    property,
    op,
    h("label", { for: `value-${n}`, className: "sr-only" }, "Value"),
    value,
  ];
  if (!remove) return parts;
  return h(
    "div",
    { className: "condition", "data-testid": testid },
    h("span", { className: "kind" }, legend),
    parts,
    h(
      "button",
      {
        type: "button",
        className: "remove",
        "aria-label": `Remove this ${legend.toLowerCase()} condition`,
        onclick: remove,
      },
      "×",
    ),
  );
}

function eventRow(condition, remove) {
  const n = ++ids;
  const did = h(
    "select",
    { id: `did-${n}`, "aria-label": "Did or did not" },
    h("option", { value: "true" }, "Did"),
    h("option", { value: "false" }, "Did not do"),
  );
  did.value = String(condition.did);
  did.addEventListener("change", () => {
    condition.did = did.value === "true";
  });
  const event = h("select", {
    id: `event-${n}`,
    className: "event-choice",
    "data-testid": "condition-event",
    "aria-label": "Event",
  });
  fillEventChoices(event, condition.event);
  event.addEventListener("change", () => {
    condition.event = event.value;
  });
  const atLeast = h("input", {
    type: "number",
    min: 1,
    id: `atleast-${n}`,
    value: condition.atLeast,
    className: "narrow",
    "data-testid": "condition-at-least",
  });
  atLeast.addEventListener("input", () => {
    condition.atLeast = atLeast.value;
  });
  const lastDays = h("input", {
    type: "number",
    min: 1,
    id: `evdays-${n}`,
    value: condition.lastDays,
    className: "narrow",
    placeholder: "—",
  });
  lastDays.addEventListener("input", () => {
    condition.lastDays = lastDays.value;
  });
  return h(
    "div",
    { className: "condition", "data-testid": "event-condition" },
    did,
    event,
    h("span", { className: "kind" }, "where"),
    propertyRow(condition.where, null, {
      legend: "Event property",
      names: "event-property-names",
      example: "path",
    }),
    h("label", { for: `atleast-${n}` }, "at least"),
    atLeast,
    h("span", {}, "times,"),
    h("label", { for: `evdays-${n}` }, "in the last"),
    lastDays,
    h("span", {}, "days"),
    h(
      "button",
      { type: "button", className: "remove", "aria-label": "Remove this event condition", onclick: remove },
      "×",
    ),
  );
}

function fillEventChoices(select, chosen) {
  fill(
    select,
    h("option", { value: "" }, "choose an event…"),
    choices?.eventDefinitions.length
      ? h(
          "optgroup",
          { label: "Defined events" },
          choices.eventDefinitions.map((d) => h("option", { value: `def:${d.id}` }, d.name)),
        )
      : null,
    choices
      ? h(
          "optgroup",
          { label: "Raw events" },
          choices.eventNames.map((e) =>
            h("option", { value: `type:${e.type}` }, `${e.type}${e.serverSide ? " (server)" : ""}`),
          ),
        )
      : null,
  );
  select.value = chosen;
}

/** Loads the choices of the filter drop-downs (events, segments) and property names. */
export async function loadChoices(form) {
  choices = await gql(CHOICES);
  for (const select of form.querySelectorAll(".event-choice")) fillEventChoices(select, select.value);
  const segment = form.querySelector("#segment");
  if (!segment) return;
  for (const s of choices.segments)
    segment.append(h("option", { value: s.id }, `${s.name} (${s.userCount})`));
  segment.value = state.segmentId;
}

export { choices, fillEventChoices, propertyRow };
