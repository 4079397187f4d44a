/**
 * The Redis Stream commands of {@link RedisStreamQueue} that need no queue state: the consumer
 * group, the reading connection, the dead-letter stream, and the entry encoding.
 * @internal
 */
import type { Cluster, Redis } from 'ioredis';
import { keySlot } from '../store/key-slot.js';

/** A dead-lettered entry as read back by `RedisStreamQueue.deadLetters`. */
export interface DeadLetter {
  /** Id in the dead-letter stream. */
  id: string;
  /** Why the entry was dead-lettered. */
  reason: string;
  /** The original payload. */
  payload: string;
  /** The original entry id. */
  originalId: string;
  /** Deliveries before it was dead-lettered. */
  deliveries: number;
}

/** A stream entry as read: its id, its fields and how often this read counts as delivered. */
export interface RawEntry {
  id: string;
  fields: string[];
  deliveries: number;
}

/** Whether `client` is an ioredis `Cluster`. */
export function isCluster(client: Redis | Cluster): client is Cluster {
  return (client as { isCluster?: unknown }).isCluster === true;
}

/** An entry's fields as a record (`p`: payload, `d`: deliveries before it was re-added). */
export function toRecord(fields: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i]!] = fields[i + 1]!;
  return out;
}

/** The value of field `name` of an entry (the last one, as {@link toRecord} keeps), or undefined. */
export function fieldOf(fields: string[], name: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) value = fields[i + 1];
  return value;
}

/** Deliveries an entry had before this read. */
export function priorDeliveries(entry: RawEntry): number {
  return Number(fieldOf(entry.fields, 'd') ?? 0) + entry.deliveries - 1;
}

/**
 * XGROUP on the stream `key`. XGROUP names its key after a subcommand, so an ioredis `Cluster`
 * does not route it by key: it goes to a random master and relies on the MOVED reply, which was
 * seen to fail with "Connection is closed." among the first commands of a new `Cluster` client
 * (ioredis 5). On a cluster it is sent to the master that owns the stream's slot instead (and
 * through the cluster client after all when that master answers MOVED or ASK: the slot has
 * moved).
 */
export async function xgroup(
  client: Redis | Cluster,
  key: string,
  ...args: [string, string, ...string[]]
): Promise<unknown> {
  if (!isCluster(client)) return client.call('XGROUP', ...args);
  const owner = client.slots[keySlot(key)]?.[0];
  const node = client.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === owner);
  if (!node) return client.call('XGROUP', ...args);
  try {
    return await node.call('XGROUP', ...args);
  } catch (error) {
    if (/^(MOVED|ASK) /.test((error as Error).message)) return client.call('XGROUP', ...args);
    throw error;
  }
}

/**
 * The connection of the blocking reads: a duplicate of the client (a `Cluster` duplicates into
 * a `Cluster` of its own connections), connected before its first read so that a client made
 * with `enableOfflineQueue: false` works too. It drops the client's ioredis `commandTimeout`
 * (set on the client a RedisBackend creates): that would end a read blocking longer than it
 * (`blockMs`) as a failure; the queue bounds each read by its `commandTimeoutMs` plus `blockMs`.
 */
export async function openReader(client: Redis | Cluster): Promise<Redis | Cluster> {
  const reader = isCluster(client)
    ? client.duplicate([], {
        lazyConnect: true,
        redisOptions: { ...client.options.redisOptions, commandTimeout: undefined },
      })
    : client.duplicate({ lazyConnect: true, commandTimeout: undefined });
  reader.on('error', () => {}); // failures reach the read that meets them
  try {
    await reader.connect();
  } catch (error) {
    reader.disconnect();
    throw error;
  }
  return reader;
}

/** Adds one entry to a dead-letter stream; `originalId` is '' for a message never delivered. */
export async function appendDeadLetter(
  client: Redis | Cluster,
  deadLetterKey: string,
  bound: DeadLetterBound,
  reason: string,
  payload: string,
  originalId: string,
  deliveries: number,
): Promise<void> {
  // the stream stays bounded: at most maxLen entries, none older than maxAgeMs (by entry id,
  // the server's time when it was added, against this process's clock), in the same MULTI
  const minId = `${Math.max(0, Date.now() - bound.maxAgeMs)}-0`;
  const replies = await client
    .multi()
    .xadd(
      deadLetterKey,
      'MAXLEN',
      bound.maxLen,
      '*',
      'reason',
      reason,
      'payload',
      payload,
      'originalId',
      originalId,
      'deliveries',
      String(deliveries),
    )
    .xtrim(deadLetterKey, 'MINID', minId)
    .exec();
  const failed = replies?.find(([error]) => error !== null)?.[0];
  if (failed) throw failed;
}

/** The bounds of a dead-letter stream. */
export interface DeadLetterBound {
  /** Most entries kept. */
  maxLen: number;
  /** Oldest entry kept, in ms. */
  maxAgeMs: number;
}

/** The oldest `count` entries of a dead-letter stream. */
export async function readDeadLetters(
  client: Redis | Cluster,
  deadLetterKey: string,
  count: number,
): Promise<DeadLetter[]> {
  const rows = await client.xrange(deadLetterKey, '-', '+', 'COUNT', count);
  return rows.map(([id, fields]) => {
    const f = toRecord(fields);
    return {
      id,
      reason: f.reason ?? '',
      payload: f.payload ?? '',
      originalId: f.originalId ?? '',
      deliveries: Number(f.deliveries ?? 0),
    };
  });
}

/** Where a queue's entries live: its client, its stream and its consumer group. */
export interface StreamPlace {
  client: Redis | Cluster;
  key: string;
  group: string;
}

/** A queue's place with its consumer, capacity and claim idle time (a commit hand-off's needs). */
export interface QueuePlace extends StreamPlace {
  consumer: string;
  capacity: number;
  claimIdleMs: number;
}

/** Acknowledges and deletes an entry, in one MULTI on the stream's key. */
export async function removeEntry(place: StreamPlace, id: string): Promise<void> {
  await place.client.multi().xack(place.key, place.group, id).xdel(place.key, id).exec();
}

/** Acknowledges and deletes entries (one tick's acks), in one MULTI on the stream's key. */
export async function removeEntries(place: StreamPlace, ids: string[]): Promise<void> {
  await place.client
    .multi()
    .xack(place.key, place.group, ...ids)
    .xdel(place.key, ...ids)
    .exec();
}

/**
 * Removes from the group the consumers that are gone: those holding no pending delivery that
 * have been idle (no read, no claim) for `idleMs` — a worker that died, whose deliveries have
 * been taken over. A live consumer reads at least every `blockMs`, so it is never idle that
 * long; should one be removed all the same, its next read creates it again.
 */
export async function reapConsumers(
  place: StreamPlace,
  self: string,
  idleMs: number,
): Promise<void> {
  const { client, key, group } = place;
  const rows = (await client.xinfo('CONSUMERS', key, group)) as unknown[][];
  for (const row of rows) {
    const f: Record<string, unknown> = {};
    for (let i = 0; i + 1 < row.length; i += 2) f[String(row[i])] = row[i + 1];
    const name = String(f.name);
    if (name === self) continue;
    if (Number(f.pending) === 0 && Number(f.idle) >= idleMs)
      await xgroup(client, key, 'DELCONSUMER', key, group, name);
  }
}

/** Re-adds an entry with `deliveries` carried along and removes the old one, in one MULTI. */
export async function requeueEntry(
  place: StreamPlace,
  entry: RawEntry,
  deliveries: number,
): Promise<void> {
  const f = toRecord(entry.fields);
  await place.client
    .multi()
    .xadd(place.key, '*', 'p', f.p ?? '', 'd', String(deliveries))
    .xack(place.key, place.group, entry.id)
    .xdel(place.key, entry.id)
    .exec();
}

/**
 * Takes over up to `count` deliveries idle for `idleMs` (XAUTOCLAIM) for `consumer`, each with
 * its delivery count; entries deleted meanwhile are acknowledged. `call` runs every command
 * (bounded and classified by the queue).
 */
export async function claimIdle(
  place: StreamPlace,
  consumer: string,
  idleMs: number,
  count: number,
  call: <R>(fn: () => Promise<R>) => Promise<R>,
): Promise<RawEntry[]> {
  const { client, key, group } = place;
  const reply = (await call(() =>
    client.xautoclaim(key, group, consumer, idleMs, '0-0', 'COUNT', count),
  )) as [string, [string, string[] | null][], string[]?];
  const rows = reply[1].filter((r): r is [string, string[]] => Array.isArray(r[1]));
  const deleted = reply[2] ?? [];
  if (deleted.length > 0) await call(() => client.xack(key, group, ...deleted));
  const out: RawEntry[] = [];
  for (const [id, fields] of rows) {
    const pending = (await call(() => client.xpending(key, group, id, id, 1))) as [
      string,
      string,
      number,
      number,
    ][];
    out.push({ id, fields, deliveries: pending[0]?.[3] ?? 1 });
  }
  return out;
}

/**
 * XREADGROUP ... BLOCK on `reader` (a connection of its own): up to `count` entries never
 * delivered to the group, waiting at most `blockMs` for one; none when the wait ends empty.
 */
export async function readNew(
  reader: Redis | Cluster,
  place: StreamPlace,
  consumer: string,
  count: number,
  blockMs: number,
): Promise<RawEntry[]> {
  const reply = (await reader.xreadgroup(
    'GROUP',
    place.group,
    consumer,
    'COUNT',
    count,
    'BLOCK',
    blockMs,
    'STREAMS',
    place.key,
    '>',
  )) as [string, [string, string[]][]][] | null;
  if (!reply) return [];
  return reply.flatMap(([, rows]) => rows.map(([id, fields]) => ({ id, fields, deliveries: 1 })));
}

/** Copies an entry to the dead-letter stream `deadLetterKey`, then acknowledges and deletes it. */
export async function moveToDeadLetters(
  place: StreamPlace,
  deadLetterKey: string,
  bound: DeadLetterBound,
  id: string,
  payload: string,
  reason: string,
  deliveries: number,
): Promise<void> {
  await appendDeadLetter(place.client, deadLetterKey, bound, reason, payload, id, deliveries);
  await removeEntry(place, id);
}

/**
 * Removes `consumer` from the group when it holds no pending delivery. Best effort: a failure is
 * ignored (an idle consumer left in the group is harmless).
 */
export async function leaveGroupIfIdle(
  place: StreamPlace,
  consumer: string,
  call: <R>(fn: () => Promise<R>) => Promise<R>,
): Promise<void> {
  const { client, key, group } = place;
  try {
    const mine = (await call(() =>
      client.xpending(key, group, '-', '+', 1, consumer),
    )) as unknown[];
    if (mine.length === 0)
      await call(() => xgroup(client, key, 'DELCONSUMER', key, group, consumer));
  } catch {
    // best effort
  }
}

/** Creates the stream and its consumer group (XGROUP CREATE ... MKSTREAM) unless the group exists. */
export async function createGroup(place: StreamPlace): Promise<void> {
  try {
    await xgroup(place.client, place.key, 'CREATE', place.key, place.group, '0', 'MKSTREAM');
  } catch (error) {
    if (!String((error as Error).message).includes('BUSYGROUP')) throw error;
  }
}
