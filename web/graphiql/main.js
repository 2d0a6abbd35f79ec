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
import { createElement, StrictMode } from "react";
import { createRoot } from "react-dom/client";

const config = JSON.parse(document.getElementById("graphiql-config").textContent);

// Monaco (GraphiQL's editor) runs its language services in web workers: ours, from this origin.
globalThis.MonacoEnvironment = {
  getWorker(_moduleId, label) {
    return new Worker(config.workers[label] ?? config.workers.editor, { name: label });
  },
};

const fetcher = createGraphiQLFetcher({ url: config.endpoint });
const plugins = [explorerPlugin()];

createRoot(document.getElementById("graphiql")).render(
  createElement(
    StrictMode,
    null,
    createElement(GraphiQL, {
      fetcher,
      plugins,
      defaultQuery: config.defaultQuery,
      initialHeaders: config.defaultHeaders,
      defaultHeaders: config.defaultHeaders,
      defaultEditorToolsVisibility: "headers",
      isHeadersEditorEnabled: true,
      inputValueDeprecation: true,
    }),
  ),
);
