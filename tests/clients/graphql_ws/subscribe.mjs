// A graphql-ws subscriber (the graphql-transport-ws protocol, as Apollo and Relay apps use it)
// against a real Usertrail server, run by tests/clients/test_graphql_ws_client.py.
// Usage: node subscribe.mjs <ws url> <events to wait for> [filter JSON] [key]
// Prints `connected`, then one JSON line per liveEvents message; exits 0 once it has seen the
// count of events with a numeric `n` property (other events, e.g. probes, are printed only).
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, wanted, filterText, key] = process.argv.slice(2);
const filter = filterText ? JSON.parse(filterText) : null;
let seen = 0;

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: key ? { Authorization: `Bearer ${key}` } : {},
  retryAttempts: 0,
  on: { connected: () => console.log('connected') },
});

const query = `subscription($filter: LiveEventFilter) {
  liveEvents(filter: $filter) {
    dropped
    event { type source properties user { userId identity } session { id } }
  }
}`;

const subscription = client.iterate({ query, variables: { filter } });
try {
  for await (const result of subscription) {
    if (result.errors) {
      console.error(JSON.stringify(result.errors));
      process.exit(2);
    }
    const message = result.data.liveEvents;
    console.log(JSON.stringify(message));
    if (typeof message.event?.properties?.n === 'number') seen += 1;
    if (seen >= Number(wanted)) break;
  }
} catch (error) {
  console.error(error instanceof Error ? error.message : JSON.stringify(error));
  process.exit(3);
}
await client.dispose();
process.exit(0);
