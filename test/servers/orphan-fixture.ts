/**
 * Fixture of servers.test.ts: starts a NATS server, prints its dataDir, and waits to be killed.
 * The test SIGKILLs this process and checks that the server dies with it.
 */
import { startNats } from './index.js';

const nats = await startNats();
console.log(JSON.stringify({ dataDir: nats.dataDir }));
setInterval(() => {}, 60_000);
