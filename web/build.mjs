// Bundles Usertrail's browser assets into server/static/build/ (served by server/assets.py).
//
// Every file gets a content hash in its name, so the app serves them with year-long cache
// headers; manifest.json (not hashed) maps each entry to its file. Each file is written also
// compressed (.br, .gz), so the app sends the smallest one the browser accepts without
// compressing per request. Run by `make assets` after `npm ci`; needs Node 20+.
import { build } from "esbuild";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

const major = Number(process.versions.node.split(".")[0]);
if (major < 20) {
  console.error(`Node ${process.versions.node} is too old: the assets need Node 20 or newer`);
  process.exit(1);
}

const web = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(web, "..", "server", "static", "build");
const PAGES = { graphiql: "graphiql/main.js" };
const WORKERS = {
  "editor.worker": "node_modules/monaco-editor/esm/vs/editor/editor.worker.js",
  "json.worker": "node_modules/monaco-editor/esm/vs/language/json/json.worker.js",
  "graphql.worker": "node_modules/monaco-graphql/esm/graphql.worker.js",
};
// An entry's input path (as esbuild's metafile names it) -> the entry's name in the manifest.
const ENTRIES = Object.fromEntries(
  Object.entries({ ...PAGES, ...WORKERS }).map(([name, input]) => [input, name]),
);
// Smaller than this, compression saves less than its headers cost.
const COMPRESS_FROM = 1024;

// Old hashed files would pile up: each build starts from an empty folder.
await rm(out, { recursive: true, force: true });

const common = {
  absWorkingDir: web,
  bundle: true,
  minify: true,
  legalComments: "linked",
  outdir: out,
  metafile: true,
  logLevel: "warning",
  define: { "process.env.NODE_ENV": '"production"' },
  target: ["es2022"],
};

// Pages: ES modules split into shared chunks (GraphiQL loads Monaco lazily).
const pages = await build({
  ...common,
  entryPoints: { graphiql: PAGES.graphiql },
  format: "esm",
  splitting: true,
  entryNames: "[name]-[hash]",
  chunkNames: "chunks/[name]-[hash]",
  assetNames: "assets/[name]-[hash]",
  loader: { ".ttf": "file", ".woff": "file", ".woff2": "file", ".svg": "file" },
});

// Monaco's web workers: classic scripts, one file each (a worker cannot share the page's chunks).
const workers = await build({
  ...common,
  entryPoints: WORKERS,
  format: "iife",
  entryNames: "workers/[name]-[hash]",
});

// The manifest names the entries only (chunks of lazy imports are found by the entries).
const manifest = {};
for (const result of [pages, workers]) {
  for (const [file, output] of Object.entries(result.metafile.outputs)) {
    const logical = ENTRIES[output.entryPoint];
    if (logical === undefined) continue;
    manifest[`${logical}.js`] = path.relative(out, path.resolve(web, file));
    if (output.cssBundle) {
      manifest[`${logical}.css`] = path.relative(out, path.resolve(web, output.cssBundle));
    }
  }
}

const written = [...Object.keys(pages.metafile.outputs), ...Object.keys(workers.metafile.outputs)];
for (const file of written) {
  const full = path.resolve(web, file);
  const body = await readFile(full);
  if (body.length < COMPRESS_FROM || file.endsWith(".map")) continue;
  await writeFile(`${full}.gz`, gzipSync(body, { level: 9 }));
  await writeFile(
    `${full}.br`,
    brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }),
  );
}
await mkdir(out, { recursive: true });
await writeFile(path.join(out, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
console.log(`built ${written.length} files into ${path.relative(process.cwd(), out)}`);
