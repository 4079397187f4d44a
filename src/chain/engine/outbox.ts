/**
 * The outbox entry format: one letter saying what the entry is, then its body. Commits write
 * entries (successors, items, an ErrorTaskModel); the retry set promotes due retries into the
 * outbox; the relay ({@link OutboxRelay}) publishes them.
 */

/** Outbox entry of a successor: 'p' + an encoded ParserTaskModel. */
export const OUTBOX_PTM = 'p';
/** Outbox entry of an output item: 'i' + an encoded {@link ChainItem}. */
export const OUTBOX_ITEM = 'i';
/** Outbox entry of an ErrorTaskModel ('e' + the encoded message), queued by a failure's commit. */
export const OUTBOX_ETM = 'e';
/** Outbox entry of a due retry ('r' + an encoded ParserTaskModel), promoted from the retry set. */
export const OUTBOX_RETRY = 'r';
