/**
 * The health port of a master or worker (`--health-port`), for orchestrators' probes:
 * `GET /healthz` answers 200 while the process serves requests (liveness); `GET /readyz` 200
 * when `ready()` says so, else 503 (readiness: a master that listens and has recovered its HA
 * jobs; a worker registered with its master).
 */
import { createServer, type Server } from 'node:http';

export const startHealthServer = async (
  host: string,
  port: number,
  ready: () => boolean,
): Promise<Server> => {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || (path !== '/healthz' && path !== '/readyz')) {
      res
        .writeHead(404, { 'content-type': 'text/plain' })
        .end('not found: GET /healthz or /readyz\n');
      return;
    }
    const ok = path === '/healthz' || ready();
    res
      .writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' })
      .end(ok ? 'ok\n' : 'not ready\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  server.unref();
  return server;
};
