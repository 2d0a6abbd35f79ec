// Runs graphql-http's server audit against a live GraphQL endpoint and prints the outcome.
//
//   node audit.mjs http://127.0.0.1:8000/graphql
//
// With USERTRAIL_AUDIT_KEY set, every request carries `Authorization: Bearer <key>` (a
// server outside --dev refuses requests without a key before any GraphQL rule applies).
// Prints one line per result that is not ok, then a JSON line of every result, then the
// counts as JSON on the last line; exits 1 when an audit errs (a MUST failure).
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs URL');
  process.exit(2);
}
const key = process.env.USERTRAIL_AUDIT_KEY;
const fetchFn = key
  ? (input, init = {}) => {
      const headers = new Headers(init.headers);
      headers.set('authorization', `Bearer ${key}`);
      return fetch(input, { ...init, headers });
    }
  : fetch;

const results = await auditServer({ url, fetchFn });
const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
for (const r of results) {
  counts[r.status] += 1;
  if (r.status !== 'ok') {
    console.log(`${r.status.toUpperCase()} ${r.id} ${r.name}${r.reason ? ' — ' + r.reason : ''}`);
  }
}
console.log(JSON.stringify(results.map(({ id, name, status, reason }) => ({ id, name, status, reason }))));
console.log(JSON.stringify(counts));
process.exit(counts.error > 0 ? 1 : 0);
