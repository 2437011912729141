/**
 * The event time of the record being processed, for streams whose timestamps are carried
 * rather than computed from the record (after `map`, `flatMap`, `process`, a window, a mixed
 * `union`). Records are pushed synchronously through a chain, so one slot per thread is
 * enough: whoever starts processing a record sets it first (the input loop from a batch's
 * `timestamps`, an operator from its input's timestamp assigner, a window from the window it
 * fires), and operators downstream in the same call read it.
 */
export const recordTime = { value: Number.NaN };

/** The timestamp assigner of a stream with carried timestamps: reads the slot. */
export const carriedTimestamp = (_record: unknown): number => recordTime.value;
