/**
 * The deterministic Nexmark event generator, after Apache Beam's (docs/NEXMARK-QUERIES.md has the
 * whole contract). `nexmarkEvent(eventId, config)` is a pure function of its arguments: every
 * field comes from a PRNG seeded by the event id alone, so an event is the same whichever
 * subtask, file or id range produces it, and results can be checked outside eddy.
 *
 * - Kind by `eventId % 50`: 0 person, 1-3 auction, 4-49 bid (1 : 3 : 46).
 * - Ids: person `eventId/50 + 1000`; auction `epoch*3 + (eventId%50 - 1) + 1000`; a bid
 *   refers to the last auction/person created before it (or to a recent one).
 * - Hot keys: 50% of bids go to the hot auction `(lastAuction/100)*100`, else to one of the
 *   last 100 auctions; 75% of bidders are hot `(lastPerson/100)*100 + 1`, else one of the
 *   last 1000 people; 75% of sellers are hot `(lastPerson/100)*100`, else one of the last
 *   1000 people. (Beam also draws up to 10 ids beyond the last one, "leads" to records that do
 *   not exist yet; this generator does not, so every referenced id exists.)
 * - Channel: 50% one of four named channels, else `channel-i`, i < 10,000.
 * - Price: `round(10^(6u) * 100)` cents, u uniform in [0, 1) (100 to 100,000,000).
 * - `dateTime = baseTime + floor(eventId * 1000 / eventsPerSecond)`; an auction `expires`
 *   `1 + uniform[0, 2h)` ms later, h the event time until 100 more auctions exist.
 * - `extra` pads each record to Beam's average sizes (person 200, auction 500, bid 100, in
 *   Beam's accounting: 8 per number plus string lengths), sliced from a fixed pool of
 *   pseudo-random text so padding costs no per-character work.
 */
import type { Auction, Bid, NexmarkEvent, Person } from './model.js';

/** Event time and rate of the generated stream. */
export interface NexmarkConfig {
  /** Event time of event 0, epoch milliseconds. */
  readonly baseTime: number;
  /** Events per second of event time (not a throughput limit). */
  readonly eventsPerSecond: number;
}

/** 2026-01-01T00:00:00Z and 10,000 events per second of event time. */
export const DEFAULT_NEXMARK_CONFIG: NexmarkConfig = Object.freeze({
  baseTime: Date.UTC(2026, 0, 1),
  eventsPerSecond: 10_000,
});

/** Fills in the defaults and checks the values. */
export const nexmarkConfig = (partial: Partial<NexmarkConfig> = {}): NexmarkConfig => {
  const c = { ...DEFAULT_NEXMARK_CONFIG, ...partial };
  if (!Number.isSafeInteger(c.baseTime)) {
    throw new RangeError(`nexmark: baseTime must be an integer (epoch ms), got ${c.baseTime}`);
  }
  if (!Number.isFinite(c.eventsPerSecond) || c.eventsPerSecond <= 0) {
    throw new RangeError(
      `nexmark: eventsPerSecond must be a positive number, got ${c.eventsPerSecond}`,
    );
  }
  return c;
};

export const PERSON_PROPORTION = 1;
export const AUCTION_PROPORTION = 3;
export const TOTAL_PROPORTION = 50;
export const FIRST_PERSON_ID = 1000;
export const FIRST_AUCTION_ID = 1000;
export const FIRST_CATEGORY_ID = 10;
const NUM_CATEGORIES = 5;
const ACTIVE_PEOPLE = 1000;
const IN_FLIGHT_AUCTIONS = 100;
const HOT_RATIO_100 = 100;
/** Events until IN_FLIGHT_AUCTIONS more auctions exist (Beam's integer arithmetic). */
const EVENTS_FOR_AUCTIONS = Math.floor(
  (IN_FLIGHT_AUCTIONS * TOTAL_PROPORTION) / AUCTION_PROPORTION,
);

const FIRST_NAMES = [
  'Peter',
  'Paul',
  'Luke',
  'John',
  'Saul',
  'Vicky',
  'Kate',
  'Julie',
  'Sarah',
  'Deiter',
  'Walter',
];
const LAST_NAMES = [
  'Shultz',
  'Abrams',
  'Spencer',
  'White',
  'Bartels',
  'Walton',
  'Smith',
  'Jones',
  'Noris',
];
const US_STATES = ['AZ', 'CA', 'ID', 'OR', 'WA', 'WY'];
const US_CITIES = [
  'Phoenix',
  'Los Angeles',
  'San Francisco',
  'Boise',
  'Portland',
  'Bend',
  'Redmond',
  'Seattle',
  'Kent',
  'Cheyenne',
];
export const HOT_CHANNELS = ['Google', 'Facebook', 'Baidu', 'Apple'];
const HOT_URLS = HOT_CHANNELS.map(
  (c) => `https://www.nexmark.com/${c.toLowerCase()}/item.htm?query=1`,
);

// -- PRNG: mulberry32, reseeded per event. Module state is safe: generation is synchronous.

let prng = 0;

const fmix32 = (h: number): number => {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
};

/** Seeds the PRNG from both 32-bit halves of the event id (ids up to 2^53). */
const seed = (eventId: number): void => {
  const hi = Math.floor(eventId / 0x100000000) >>> 0;
  prng = fmix32((fmix32(hi ^ 0x9e3779b9) + Math.imul(eventId >>> 0, 0xcc9e2d51)) >>> 0);
};

/** Uniform in [0, 1), 32 bits. */
const unit = (): number => {
  prng = (prng + 0x6d2b79f5) | 0;
  let t = Math.imul(prng ^ (prng >>> 15), 1 | prng);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

/** Uniform integer in [0, n). */
const int = (n: number): number => Math.floor(unit() * n);

// -- Text: slices of one fixed pool (lowercase letters, a space about 1 in 13).

const POOL_LENGTH = 1 << 16;
const POOL = (() => {
  prng = 0x5eed;
  const chars: string[] = new Array(POOL_LENGTH);
  for (let i = 0; i < POOL_LENGTH; i++) {
    chars[i] = int(13) === 0 ? ' ' : String.fromCharCode(97 + int(26));
  }
  return chars.join('');
})();

const slice = (length: number): string => {
  const at = int(POOL_LENGTH - length);
  return POOL.slice(at, at + length);
};

/** Beam's nextString: 3 to maxLength - 1 characters. */
const text = (maxLength: number): string => slice(3 + int(maxLength - 3));

/** Padding to an average of `average` (Beam's nextExtra: within ±20% of what is missing). */
const extra = (currentSize: number, average: number): string => {
  if (currentSize > average) return '';
  const missing = average - currentSize;
  const delta = Math.round(missing * 0.2);
  return slice(missing - delta + (delta === 0 ? 0 : int(2 * delta)));
};

const price = (): number => Math.round(10 ** (unit() * 6) * 100);

const digits4 = (): string => String(int(10_000)).padStart(4, '0');

// -- Ids (Beam's base-0 arithmetic; the first ids are FIRST_PERSON_ID / FIRST_AUCTION_ID).

/** The id (base 0) of the last person created at or before `eventId`. */
export const lastBase0PersonId = (eventId: number): number => {
  const epoch = Math.floor(eventId / TOTAL_PROPORTION);
  const offset = Math.min(eventId % TOTAL_PROPORTION, PERSON_PROPORTION - 1);
  return epoch * PERSON_PROPORTION + offset;
};

/** The id (base 0) of the last auction created at or before `eventId` (-1: none yet). */
export const lastBase0AuctionId = (eventId: number): number => {
  let epoch = Math.floor(eventId / TOTAL_PROPORTION);
  let offset = eventId % TOTAL_PROPORTION;
  if (offset < PERSON_PROPORTION) {
    epoch--;
    offset = AUCTION_PROPORTION - 1;
  } else if (offset >= PERSON_PROPORTION + AUCTION_PROPORTION) {
    offset = AUCTION_PROPORTION - 1;
  } else {
    offset -= PERSON_PROPORTION;
  }
  return epoch * AUCTION_PROPORTION + offset;
};

/** One of the last ACTIVE_PEOPLE people (base 0). */
const recentPerson = (eventId: number): number => {
  const people = lastBase0PersonId(eventId) + 1;
  const active = Math.min(people, ACTIVE_PEOPLE);
  return people - active + int(active);
};

/** One of the last IN_FLIGHT_AUCTIONS auctions (base 0). */
const recentAuction = (eventId: number): number => {
  const last = lastBase0AuctionId(eventId);
  const first = Math.max(last - IN_FLIGHT_AUCTIONS + 1, 0);
  return first + int(last - first + 1);
};

/** Event time of event `eventId`: integer arithmetic, so no rounding surprises at 0.1 ms. */
export const eventTime = (eventId: number, config: NexmarkConfig): number =>
  config.baseTime + Math.floor((eventId * 1000) / config.eventsPerSecond);

/** The kind of event `eventId` is, without generating it. */
export const eventKind = (eventId: number): NexmarkEvent['type'] => {
  const rem = eventId % TOTAL_PROPORTION;
  if (rem < PERSON_PROPORTION) return 'person';
  return rem < PERSON_PROPORTION + AUCTION_PROPORTION ? 'auction' : 'bid';
};

const person = (eventId: number, dateTime: number): Person => {
  const name = `${FIRST_NAMES[int(FIRST_NAMES.length)]} ${LAST_NAMES[int(LAST_NAMES.length)]}`;
  const emailAddress = `${text(7)}@${text(5)}.com`;
  const creditCard = `${digits4()} ${digits4()} ${digits4()} ${digits4()}`;
  const city = US_CITIES[int(US_CITIES.length)]!;
  const state = US_STATES[int(US_STATES.length)]!;
  const size = 16 + name.length + emailAddress.length + creditCard.length + city.length + 2;
  return {
    type: 'person',
    id: lastBase0PersonId(eventId) + FIRST_PERSON_ID,
    name,
    emailAddress,
    creditCard,
    city,
    state,
    dateTime,
    extra: extra(size, 200),
  };
};

const auction = (eventId: number, dateTime: number, config: NexmarkConfig): Auction => {
  const hotSeller = int(4) > 0;
  const seller =
    (hotSeller
      ? Math.floor(lastBase0PersonId(eventId) / HOT_RATIO_100) * HOT_RATIO_100
      : recentPerson(eventId)) + FIRST_PERSON_ID;
  const category = FIRST_CATEGORY_ID + int(NUM_CATEGORIES);
  const initialBid = price();
  const horizon = eventTime(eventId + EVENTS_FOR_AUCTIONS, config) - dateTime;
  const expires = dateTime + 1 + int(Math.max(horizon * 2, 1));
  const itemName = text(20);
  const description = text(100);
  const reserve = initialBid + price();
  return {
    type: 'auction',
    id: lastBase0AuctionId(eventId) + FIRST_AUCTION_ID,
    itemName,
    description,
    initialBid,
    reserve,
    dateTime,
    expires,
    seller,
    category,
    extra: extra(48 + itemName.length + description.length, 500),
  };
};

const bid = (eventId: number, dateTime: number): Bid => {
  const auctionId =
    (int(2) > 0
      ? Math.floor(lastBase0AuctionId(eventId) / HOT_RATIO_100) * HOT_RATIO_100
      : recentAuction(eventId)) + FIRST_AUCTION_ID;
  const bidder =
    (int(4) > 0
      ? Math.floor(lastBase0PersonId(eventId) / HOT_RATIO_100) * HOT_RATIO_100 + 1
      : recentPerson(eventId)) + FIRST_PERSON_ID;
  const p = price();
  let channel: string;
  let url: string;
  if (int(2) > 0) {
    const i = int(HOT_CHANNELS.length);
    channel = HOT_CHANNELS[i]!;
    url = HOT_URLS[i]!;
  } else {
    const i = int(10_000);
    channel = `channel-${i}`;
    url = `https://www.nexmark.com/${text(8)}/item.htm?query=1&channel_id=${i}`;
  }
  return {
    type: 'bid',
    auction: auctionId,
    bidder,
    price: p,
    channel,
    url,
    dateTime,
    extra: extra(32, 100),
  };
};

/**
 * Event `eventId` (a non-negative safe integer) of the Nexmark stream: a pure function of
 * `eventId` and `config`.
 *
 * @example
 * nexmarkEvent(4); // { type: 'bid', auction: 1000, ... } — the same on every call
 */
export const nexmarkEvent = (
  eventId: number,
  config: NexmarkConfig = DEFAULT_NEXMARK_CONFIG,
): NexmarkEvent => {
  seed(eventId);
  const dateTime = eventTime(eventId, config);
  const kind = eventKind(eventId);
  if (kind === 'bid') return bid(eventId, dateTime);
  return kind === 'person' ? person(eventId, dateTime) : auction(eventId, dateTime, config);
};
