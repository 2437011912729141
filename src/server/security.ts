/**
 * Who may talk to a job's REST API. By default it listens on loopback only, where anyone on
 * this machine may (as with `eddy stop` over the control socket). Listening on another address
 * requires a bearer token, and a job refuses to start without one: anyone who can reach the
 * port could otherwise stop or rescale the job, or write savepoints anywhere it can write.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { InvalidArgumentError } from '../core/errors.js';
import { ApiError } from './http-util.js';

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/** `127.0.0.0/8`, `::1` and `localhost`. */
export const isLoopbackHost = (host: string): boolean =>
  LOOPBACK_NAMES.has(host.toLowerCase()) || /^127(\.\d{1,3}){3}$/.test(host);

/**
 * Refuses a non-loopback `host` without a token, and a token that cannot be sent in a header.
 * @throws InvalidArgumentError saying why and what to do.
 */
export const checkUiAccess = (host: string, token: string | undefined): void => {
  if (token !== undefined && (token.length === 0 || /\s/.test(token))) {
    throw new InvalidArgumentError(
      'the UI token (--ui-token or EDDY_UI_TOKEN) must be non-empty and contain no whitespace',
    );
  }
  if (!isLoopbackHost(host) && token === undefined) {
    throw new InvalidArgumentError(
      `--ui-host ${host} would let anyone who reaches that address stop or rescale this job: ` +
        'give a token with EDDY_UI_TOKEN=<secret> (or --ui-token <secret>); clients then send ' +
        "'Authorization: Bearer <secret>'. Without --ui-host the API listens on 127.0.0.1 only.",
    );
  }
};

const digest = (s: string) => createHash('sha256').update(s).digest();

/** 401 unless the request carries `Authorization: Bearer <token>` (compared in constant time). */
export const checkToken = (req: IncomingMessage, token: string): void => {
  const header = req.headers.authorization ?? '';
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m || !timingSafeEqual(digest(m[1]!), digest(token))) {
    throw new ApiError(
      401,
      'EDDY_UNAUTHORIZED',
      m
        ? 'the bearer token is wrong'
        : "this job's API needs a token: send 'Authorization: Bearer <token>' (the job's --ui-token or EDDY_UI_TOKEN)",
    );
  }
};

/**
 * Without a token, only requests addressed to a loopback name (or the bound address) are
 * served: a web page from elsewhere cannot reach the API through DNS rebinding.
 */
export const checkHostHeader = (req: IncomingMessage, boundHost: string): void => {
  const header = req.headers.host;
  if (header === undefined) return; // HTTP/1.0 clients on this machine
  const name = header.startsWith('[')
    ? header.slice(0, header.indexOf(']') + 1)
    : header.split(':')[0]!;
  if (isLoopbackHost(name) || name === boundHost) return;
  throw new ApiError(
    403,
    'EDDY_FORBIDDEN_HOST',
    `requests for host '${name}' are refused: address the job as 127.0.0.1 or localhost`,
  );
};
