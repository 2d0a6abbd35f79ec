// GraphiQL for /graphql, built from the npm registry's packages and served by the app itself:
// nothing is fetched from outside the machine. The page (server/ide.py) holds no inline script,
// so that its Content-Security-Policy can forbid them: this module reads the page's settings
// (endpoint, worker files, default tabs, headers hint) from a JSON script tag.
//
// Subscriptions (`liveEvents`) run over WebSocket (graphql-transport-ws, the graphql-ws package)
// at the endpoint's own URL: ws: on an http: page, wss: on https:. A browser cannot set headers
// on a WebSocket, so the tab's headers (its API key) travel as the connection_init payload.
import "graphiql/style.css";
import "@graphiql/plugin-explorer/style.css";
import "./page.css";

import { explorerPlugin } from "@graphiql/plugin-explorer";
import { createGraphiQLFetcher } from "@graphiql/toolkit";
import { GraphiQL } from "graphiql";
import { createClient } from "graphql-ws";
import { createElement, StrictMode, useCallback, useRef, useState } from "react";
import { createRoot } from "react-dom/client";

const config = JSON.parse(document.getElementById("graphiql-config").textContent);

// Monaco (GraphiQL's editor) runs its language services in web workers: ours, from this origin.
globalThis.MonacoEnvironment = {
  getWorker(_moduleId, label) {
    return new Worker(config.workers[label] ?? config.workers.editor, { name: label });
  },
};

// GraphiQL fetches the schema once, when it opens (outside dev mode, before a key is typed in):
// a new fetcher makes it fetch again, so the Docs and completion follow the key in the headers.
const KEY_SETTLES_MS = 600;
const plugins = [explorerPlugin()];
// The server closes a connection whose key is missing, unknown or revoked with 4403: retrying
// will not help (graphql-ws would retry for half a minute), saying so does.
const REFUSED = 4403;
const socketUrl = new URL(config.endpoint, location.href);
socketUrl.protocol = location.protocol === "https:" ? "wss:" : "ws:";

// What @graphiql/toolkit subscribes with (its `wsClient`): one connection per subscription,
// whose connection_init payload is the running tab's headers.
function socketFor(headers) {
  return {
    subscribe(payload, sink) {
      const client = createClient({
        url: socketUrl.href,
        connectionParams: headers ?? {},
        shouldRetry: (closed) => closed?.code !== REFUSED,
      });
      const error = (err) => {
        if (err?.code !== REFUSED) return sink.error(err);
        sink.error(
          new Error(
            `The server refused the subscription's API key (WebSocket closed with ${REFUSED}): ` +
              'put a read key in the Headers tab: {"Authorization": "Bearer <your read key>"}',
          ),
        );
      };
      const unsubscribe = client.subscribe(payload, { ...sink, error });
      return () => {
        unsubscribe();
        client.dispose();
      };
    },
  };
}

// Queries and mutations over HTTP with the tab's headers, subscriptions over WebSocket.
function usertrailFetcher() {
  return (params, options) =>
    createGraphiQLFetcher({ url: config.endpoint, wsClient: socketFor(options?.headers) })(
      params,
      options,
    );
}

function authorizationOf(headers) {
  return /"authorization"\s*:\s*"([^"]*)"/i.exec(headers ?? "")?.[1] ?? null;
}

function UsertrailGraphiQL() {
  const [fetcher, setFetcher] = useState(usertrailFetcher);
  const introspectedWith = useRef(authorizationOf(config.defaultHeaders));
  const settling = useRef(undefined);
  const onEditHeaders = useCallback((headers) => {
    clearTimeout(settling.current);
    settling.current = setTimeout(() => {
      const key = authorizationOf(headers);
      if (key === introspectedWith.current) return;
      introspectedWith.current = key;
      setFetcher(usertrailFetcher);
    }, KEY_SETTLES_MS);
  }, []);
  return createElement(GraphiQL, {
    fetcher,
    plugins,
    defaultQuery: config.defaultQuery,
    // Used while the browser keeps no tabs of its own (GraphiQL stores them in localStorage).
    defaultTabs: [
      { query: config.defaultQuery, headers: config.defaultHeaders },
      { query: config.liveQuery, headers: config.defaultHeaders },
    ],
    initialHeaders: config.defaultHeaders,
    defaultHeaders: config.defaultHeaders,
    defaultEditorToolsVisibility: "headers",
    isHeadersEditorEnabled: true,
    inputValueDeprecation: true,
    onEditHeaders,
  });
}

createRoot(document.getElementById("graphiql")).render(
  createElement(StrictMode, null, createElement(UsertrailGraphiQL)),
);
