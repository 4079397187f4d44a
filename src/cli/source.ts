/**
 * What the `mocra` command reads a deployment through, whatever its store: the runs, a run's
 * retries, leases and dead letters, and the dead letters of the three queues (and, for a
 * replay, writes them back to their queue). `RedisSource` reads a Redis, `DurableSource` a
 * durable data directory; both give the same views, so the output does not depend on the store.
 */
import type { RunStatus } from '../chain/engine/types.js';
import { RunNotFoundError } from '../errors.js';

/** The three work queues. */
export const QUEUE_NAMES = ['task', 'parser', 'error'] as const;
/** A work queue's name. */
export type QueueName = (typeof QUEUE_NAMES)[number];

/** A node retry waiting in its task's retry set. @internal */
export interface RetryView {
  moduleId: string;
  stepIdx: number;
  prefixRequest: string;
  attempt: number;
  /** When it is due (ms since the epoch, the store's clock). */
  dueAt: number;
}

/**
 * A node lease held in a run: a node of the run whose record says `processing` (its lease may
 * have run out: the next claim of its message takes it over). @internal
 */
export interface LeaseView {
  nodeId: string;
  status: string;
  /** The worker (and delivery) that holds it. */
  owner: string;
  version: number;
  epoch: number;
  /** When it ends (ms since the epoch, the store's clock). */
  until: number;
}

/** A dead letter of a queue. @internal */
export interface DeadLetterView {
  queue: QueueName;
  id: string;
  reason: string;
  deliveries: number;
  originalId: string;
  kind?: string;
  taskId?: string;
  runId?: string;
  moduleId?: string;
}

/** A deployment's store as the command reads it. @internal */
export interface Source {
  /** The runs whose record has not expired, oldest start first. */
  runs(): Promise<RunStatus[]>;
  /**
   * One run's status.
   * @throws {@link RunNotFoundError} when the run is unknown here (or expired).
   */
  run(runId: string): Promise<RunStatus>;
  /** The retries of a run waiting in its task's retry set. */
  retries(taskId: string, runId: string): Promise<RetryView[]>;
  /** The leases held on nodes of a run (its nodes in `processing`), soonest end first. */
  leases(taskId: string, runId: string): Promise<LeaseView[]>;
  /** The dead letters of the queues (all three when empty), oldest first, at most `max` each. */
  deadLetters(queues: readonly QueueName[], max?: number): Promise<DeadLetterView[]>;
  /**
   * Publishes dead letters to their queue again and removes them from the dead letters;
   * returns those replayed (one replayed or dropped meanwhile is skipped).
   */
  replay(letters: readonly DeadLetterView[]): Promise<DeadLetterView[]>;
  /** Lets go of the store (connection, environment, lock). */
  close(): Promise<void>;
}

/** The message of a run's "not found" error. @internal */
export const runNotFound = (runId: string, where: string): string =>
  `run ${JSON.stringify(runId)} not found (${where}, never submitted here, or expired)`;

/** The envelope of a queued message (`{ kind, body }`), or null when it is not one. */
function messageEnvelope(text: string): { kind?: unknown; body?: Record<string, unknown> } | null {
  try {
    const v = JSON.parse(text) as unknown;
    return v !== null && typeof v === 'object' ? (v as { body?: Record<string, unknown> }) : null;
  } catch {
    return null;
  }
}

/**
 * A member of a task's retry set (a one-letter tag, then the message) as a retry of `runId`,
 * or null when it belongs to another run or is not a message.
 * @internal
 */
export function retryView(member: string, dueAt: number, runId: string): RetryView | null {
  const body = messageEnvelope(member.slice(1))?.body;
  if (body?.runId !== runId) return null;
  return {
    moduleId: String(body.moduleId),
    stepIdx: Number(body.stepIdx),
    prefixRequest: String(body.prefixRequest ?? ''),
    attempt: Number(body.epoch ?? 0),
    dueAt,
  };
}

/**
 * A dead letter as the command shows it; its kind, task, run and module are read from the
 * stored message when it is one.
 * @internal
 */
export function deadLetterView(
  letter: Omit<DeadLetterView, 'kind' | 'taskId' | 'runId' | 'moduleId'>,
  payload: string,
): DeadLetterView {
  const view: DeadLetterView = { ...letter };
  const message = messageEnvelope(payload);
  if (message) {
    if (typeof message.kind === 'string') view.kind = message.kind;
    const body = message.body;
    if (typeof body?.taskId === 'string') view.taskId = body.taskId;
    if (typeof body?.runId === 'string') view.runId = body.runId;
    if (typeof body?.moduleId === 'string') view.moduleId = body.moduleId;
  }
  return view;
}

/**
 * The statuses of `runIds` read with `run`, oldest first; a run unknown or expired meanwhile is
 * left out. @internal
 */
export async function knownRuns(
  runIds: readonly string[],
  run: (runId: string) => Promise<RunStatus>,
): Promise<RunStatus[]> {
  const out: RunStatus[] = [];
  for (const runId of runIds) {
    const status = await run(runId).catch((error: unknown) => {
      if (error instanceof RunNotFoundError) return null;
      throw error;
    });
    if (status) out.push(status);
  }
  return out.sort((a, b) => a.startedAt - b.startedAt);
}

/** Node records read per round trip when listing a run's leases. @internal */
export const LEASE_BATCH = 500;

/** The node ids among a run's key suffixes (`ptm:<id>`; see `ChainKeyBuilder.runKeys`). @internal */
export function runNodeIds(suffixes: readonly string[]): string[] {
  const out: string[] = [];
  for (const suffix of suffixes) if (suffix.startsWith('ptm:')) out.push(suffix.slice(4));
  return out;
}
