// GraphiQL for /graphql, built from the npm registry's packages and served by the app itself:
// nothing is fetched from outside the machine. The page (server/ide.py) holds no inline script,
// so that its Content-Security-Policy can forbid them: this module reads the page's settings
// (endpoint, worker files, default tab, headers hint) from a JSON script tag.
import "graphiql/style.css";
import "@graphiql/plugin-explorer/style.css";
import "./page.css";

import { explorerPlugin } from "@graphiql/plugin-explorer";
import { createGraphiQLFetcher } from "@graphiql/toolkit";
import { GraphiQL } from "graphiql";
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

function authorizationOf(headers) {
  return /"authorization"\s*:\s*"([^"]*)"/i.exec(headers ?? "")?.[1] ?? null;
}

function UsertrailGraphiQL() {
  const [fetcher, setFetcher] = useState(() => createGraphiQLFetcher({ url: config.endpoint }));
  const introspectedWith = useRef(authorizationOf(config.defaultHeaders));
  const settling = useRef(undefined);
  const onEditHeaders = useCallback((headers) => {
    clearTimeout(settling.current);
    settling.current = setTimeout(() => {
      const key = authorizationOf(headers);
      if (key === introspectedWith.current) return;
      introspectedWith.current = key;
      setFetcher(() => createGraphiQLFetcher({ url: config.endpoint }));
    }, KEY_SETTLES_MS);
  }, []);
  return createElement(GraphiQL, {
    fetcher,
    plugins,
    defaultQuery: config.defaultQuery,
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
