/**
 * The Nexmark event model (the online auction benchmark's three record types), with the field
 * names of the Nexmark SQL queries. Every event carries `type`, so one stream (or one JSON Lines
 * file) can hold all three and be split with a filter. `dateTime` and `expires` are epoch
 * milliseconds; prices are whole cents.
 */

/** A person: someone who opens an account to sell or bid. */
export interface Person {
  readonly type: 'person';
  readonly id: number;
  readonly name: string;
  readonly emailAddress: string;
  readonly creditCard: string;
  readonly city: string;
  readonly state: string;
  /** Event time, epoch milliseconds. */
  readonly dateTime: number;
  /** Padding, so that records have realistic sizes. */
  readonly extra: string;
}

/** An auction: an item `seller` puts up for sale, open from `dateTime` until `expires`. */
export interface Auction {
  readonly type: 'auction';
  readonly id: number;
  readonly itemName: string;
  readonly description: string;
  /** Cents. */
  readonly initialBid: number;
  /** Cents, above `initialBid`. */
  readonly reserve: number;
  /** Event time, epoch milliseconds. */
  readonly dateTime: number;
  /** When the auction closes, epoch milliseconds (after `dateTime`). */
  readonly expires: number;
  /** A person id. */
  readonly seller: number;
  /** 10 to 14. */
  readonly category: number;
  /** Padding, so that records have realistic sizes. */
  readonly extra: string;
}

/** A bid of `bidder` (a person id) on `auction` (an auction id). */
export interface Bid {
  readonly type: 'bid';
  readonly auction: number;
  readonly bidder: number;
  /** Cents, 100 to 100,000,000 (log-uniform). */
  readonly price: number;
  readonly channel: string;
  readonly url: string;
  /** Event time, epoch milliseconds. */
  readonly dateTime: number;
  /** Padding, so that records have realistic sizes. */
  readonly extra: string;
}

/** One Nexmark event: a person, an auction or a bid (discriminated by `type`). */
export type NexmarkEvent = Person | Auction | Bid;
