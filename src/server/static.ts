/**
 * The dashboard's files (built into `dist/ui/` by scripts/build.mjs). Only files under the UI
 * directory are served; without it `/` says the dashboard is not built (the API still works).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>eddy</title></head>
<body style="font-family: system-ui, sans-serif; margin: 3rem; max-width: 40rem">
<h1>The eddy dashboard is not built</h1>
<p>Run <code>npm run build</code> in eddy's checkout to build it into <code>dist/ui/</code>, then reload.</p>
<p>The REST API works without it: <a href="/api/jobs">/api/jobs</a> (see docs/REST.md), and Prometheus metrics are at <a href="/metrics">/metrics</a>.</p>
</body></html>
`;

const isFile = async (path: string): Promise<boolean> => {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
};

/**
 * Serves `pathname` from `root`: `/` is `index.html`; a path without an extension that is not
 * a file falls back to `index.html` (client-side routes). Returns false when nothing matched.
 */
export const serveStatic = async (
  root: string | undefined,
  pathname: string,
  res: ServerResponse,
): Promise<boolean> => {
  const index = root === undefined ? undefined : join(root, 'index.html');
  if (root === undefined || index === undefined || !(await isFile(index))) {
    if (pathname !== '/' && pathname !== '/index.html') return false;
    res.writeHead(200, { 'content-type': TYPES['.html']!, 'cache-control': 'no-store' });
    res.end(NOT_BUILT);
    return true;
  }
  let rel: string;
  try {
    rel = decodeURIComponent(pathname);
  } catch {
    return false;
  }
  const file = normalize(join(root, rel === '/' ? 'index.html' : rel));
  // normalize() resolved any '..': what is left must still be inside the UI directory.
  if (file !== root && !file.startsWith(root.endsWith(sep) ? root : root + sep)) return false;
  let path = file;
  if (!(await isFile(path))) {
    if (extname(rel) !== '') return false;
    path = index;
  }
  const type = TYPES[extname(path)] ?? 'application/octet-stream';
  // Hashed asset names may be cached; index.html names them, so it must not be.
  const cache = path === index ? 'no-cache' : 'public, max-age=3600';
  res.writeHead(200, { 'content-type': type, 'cache-control': cache });
  createReadStream(path).pipe(res);
  return true;
};
