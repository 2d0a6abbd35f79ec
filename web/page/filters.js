// The users filter as the page holds it, and the UserFilter it sends to the API.

export const OPERATORS = [
  ["EQUALS", "equals"],
  ["NOT_EQUALS", "does not equal"],
  ["CONTAINS", "contains"],
  ["NOT_CONTAINS", "does not contain"],
  ["STARTS_WITH", "starts with"],
  ["ENDS_WITH", "ends with"],
  ["GREATER_THAN", "is greater than"],
  ["LESS_THAN", "is less than"],
  ["IN", "is one of (a, b)"],
  ["NOT_IN", "is none of (a, b)"],
  ["MATCHES", "matches (* wildcard)"],
  ["IS_SET", "is set"],
  ["IS_NOT_SET", "is not set"],
];
const NO_VALUE = new Set(["IS_SET", "IS_NOT_SET"]);
const LIST_VALUE = new Set(["IN", "NOT_IN"]);
const NUMERIC = new Set(["GREATER_THAN", "GREATER_OR_EQUAL", "LESS_THAN", "LESS_OR_EQUAL"]);
const NUMBER = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/;

/** The filter of the users list; survives moving to a user and back. */
export const state = {
  seen: { lastDays: 7 }, // or { from, to } as yyyy-mm-dd
  properties: [], // { property, op, value }
  events: [], // { did, event: "type:click" | "def:<id>", where: {property, op, value}, atLeast, lastDays }
  segmentId: "",
};

export const needsValue = (op) => !NO_VALUE.has(op);

/** A condition's value as the API takes it: a list for IN / NOT_IN, none for IS_SET. */
function value(op, raw) {
  if (NO_VALUE.has(op)) return null;
  if (LIST_VALUE.has(op))
    return raw
      .split(",")
      .map((part) => part.trim())
      .filter(Boolean);
  // Comparisons take numbers; any other operator compares the text form, so text stays text.
  if (NUMERIC.has(op) && NUMBER.test(raw)) return Number(raw);
  return raw;
}

function condition({ property, op, value: raw }) {
  const built = { property: property.trim(), op };
  const given = value(op, raw ?? "");
  if (given !== null) built.value = given;
  return built;
}

/** One condition as a list of the API's PropertyCondition. */
export const propertyCondition = (c) => [condition(c)];

/** A TimeRange from {lastDays} or {from, to} (dates as the date inputs give them). */
export function timeRange(seen) {
  if (seen.lastDays) return { lastDays: Number(seen.lastDays) };
  const range = {};
  if (seen.from) range.from = new Date(`${seen.from}T00:00:00`).toISOString();
  if (seen.to) range.to = new Date(`${seen.to}T23:59:59.999`).toISOString();
  return range;
}

/** The EventMatch of an event condition: a defined event or a raw type, maybe narrowed. */
export function eventMatch(eventCondition) {
  const [kind, id] = splitChoice(eventCondition.event);
  const match = kind === "def" ? { definitionId: id } : { type: id };
  const where = eventCondition.where;
  if (where?.property?.trim()) match.where = [condition(where)];
  return match;
}

function splitChoice(choice) {
  const at = choice.indexOf(":");
  return [choice.slice(0, at), choice.slice(at + 1)];
}

/** The UserFilter the list is read with. */
export function userFilter() {
  const filter = { seen: timeRange(state.seen) };
  const properties = state.properties.filter((c) => c.property.trim()).map(condition);
  if (properties.length) filter.properties = properties;
  const events = state.events
    .filter((c) => c.event)
    .map((c) => {
      const built = { event: eventMatch(c), did: c.did, atLeast: Math.max(1, Number(c.atLeast) || 1) };
      if (Number(c.lastDays) > 0) built.time = { lastDays: Number(c.lastDays) };
      return built;
    });
  if (events.length) filter.events = events;
  if (state.segmentId) filter.segmentId = state.segmentId;
  return filter;
}

/** What "See all sessions" highlights: the events of the filter's "did" conditions. */
export function highlightMatch() {
  const did = state.events.filter((c) => c.event && c.did);
  return did.length ? eventMatch(did[0]) : null;
}

/** "in the last 7 days", "between Dec 1, 2026 and Dec 7, 2026". */
export function describeSeen(seen) {
  if (seen.lastDays) return `in the last ${seen.lastDays} day${Number(seen.lastDays) === 1 ? "" : "s"}`;
  if (seen.from && seen.to) return `between ${seen.from} and ${seen.to}`;
  if (seen.from) return `since ${seen.from}`;
  if (seen.to) return `until ${seen.to}`;
  return "";
}
