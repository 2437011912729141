/**
 * `Nats-Msg-Id` derivation for the NATS sink (pure). A message's id is
 * `<lineage>:<sink uid>:<subtask>:<checkpoint id>:<index>`: the writer that sealed its batch
 * (a random lineage per writer instance, the sink's uid, the subtask index), the checkpoint
 * the batch belongs to, and the message's index within that batch. The id travels with the
 * batch in the checkpoint, so re-publishing a restored batch repeats exactly the same ids,
 * and the stream drops them as duplicates (within its duplicate window).
 */

/** The part of the id fixed per writer: `<lineage>:<uid>:<subtask>`. */
export const msgIdPrefix = (lineage: string, uid: string, subtask: number): string =>
  `${lineage}:${uid}:${subtask}`;

/**
 * The id of message `index` of the batch sealed for `checkpointId` (0 without checkpointing).
 *
 * @example
 * natsMsgId('9f1c:nats-sink-uid:2', 7, 41); // '9f1c:nats-sink-uid:2:7:41'
 */
export const natsMsgId = (prefix: string, checkpointId: number, index: number): string =>
  `${prefix}:${checkpointId}:${index}`;
