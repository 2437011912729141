/** The NATS client libraries, loaded when a NATS connector first connects (lazy-module.ts). */
import { lazyModule } from '../lazy-module.js';

export const natsTransport = lazyModule(
  '@nats-io/transport-node',
  () => import('@nats-io/transport-node'),
);
export const natsJetStream = lazyModule('@nats-io/jetstream', () => import('@nats-io/jetstream'));
