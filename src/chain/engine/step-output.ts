/**
 * What a module's step hands back, checked: the requests `generate` returns (ids and methods
 * filled in) and the `{ items, next }` of `parse`; and how a step's failure becomes the error
 * info of an ErrorTaskModel.
 */
import { redactText } from './redact.js';
import { createHash } from 'node:crypto';
import { ConfigError, isMocraError } from '../../errors.js';
import type { ChainErrorInfo } from '../messages.js';
import type { ChainRequest, ParseOutput } from '../module.js';
import type { ChildInput } from './routes.js';

/** A request with its id and method filled in. */
export type ResolvedRequest = Readonly<ChainRequest> & {
  readonly id: string;
  readonly method: string;
};

/** A failure of one stage of a node; becomes its ErrorTaskModel. @internal */
export class NodeFailure extends Error {
  constructor(
    readonly stage: 'generate' | 'download' | 'parse',
    readonly error: unknown,
  ) {
    super(error instanceof Error ? error.message : String(error));
  }
}

/** The error info an ErrorTaskModel carries for a failure at `epoch`. @internal */
export function errorInfo(
  failure: NodeFailure,
  epoch: number,
  secrets: readonly string[] = [],
): ChainErrorInfo {
  const error = failure.error;
  // the message travels on the error queue and into logs: no login info value, no credential
  const message = redactText(
    `${failure.stage}: ${error instanceof Error ? error.message : String(error)}`,
    secrets,
  );
  const code =
    isMocraError(error) || (typeof error === 'object' && error !== null && 'code' in error)
      ? String((error as { code: unknown }).code)
      : undefined;
  // user errors are retried (a flaky page may parse next time); mocra errors say for themselves
  const retryable = isMocraError(error) ? error.retryable : true;
  const hash = createHash('sha1')
    .update(`${epoch}\u0000${failure.stage}\u0000${code ?? ''}\u0000${message}`)
    .digest('hex')
    .slice(0, 20);
  const info: ChainErrorInfo = { message: message.slice(0, 2000), hash, retryable };
  if (code !== undefined) info.code = code;
  const hint = isMocraError(error) ? error.retryAfterMs : undefined;
  if (hint !== undefined && Number.isFinite(hint) && hint >= 0)
    info.retryAfterMs = Math.round(hint);
  return info;
}

/** Checks what `generate` returned and fills in each request's id and method. @internal */
export function resolveRequests(value: unknown): ResolvedRequest[] {
  if (!Array.isArray(value)) {
    throw new ConfigError(`generate must return an array of requests, got ${typeof value}`, {
      context: { field: 'generate' },
    });
  }
  const seen = new Set<string>();
  return value.map((r: unknown, i) => {
    if (r === null || typeof r !== 'object' || typeof (r as ChainRequest).url !== 'string') {
      throw new ConfigError(
        `generate returned an invalid request at [${i}]: expected { url: string }`,
        {
          context: { field: `requests[${i}]` },
        },
      );
    }
    const req = r as ChainRequest;
    const method = (req.method ?? 'GET').toUpperCase();
    let id = req.id;
    if (id === undefined) {
      id = `${method} ${req.url}`;
      if (req.body !== undefined)
        id += ` ${createHash('sha1').update(req.body).digest('hex').slice(0, 12)}`;
    }
    if (typeof id !== 'string' || id.length === 0) {
      throw new ConfigError(`generate returned a request with an empty id at [${i}]`, {
        context: { field: `requests[${i}].id` },
      });
    }
    if (seen.has(id)) {
      throw new ConfigError(`generate returned two requests with the id ${JSON.stringify(id)}`, {
        context: { field: `requests[${i}].id` },
      });
    }
    seen.add(id);
    return Object.freeze({ ...req, id, method });
  });
}

/** Checks what `parse` returned (undefined and null mean nothing). @internal */
export function checkParseOutput(out: unknown): ParseOutput {
  if (out === undefined || out === null) return {};
  if (typeof out !== 'object' || Array.isArray(out)) {
    throw new ConfigError('parse must return { items?, next? }', { context: { field: 'parse' } });
  }
  const o = out as ParseOutput;
  if (o.items !== undefined && !Array.isArray(o.items))
    throw new ConfigError('parse returned `items` that is not an array', {
      context: { field: 'items' },
    });
  if (o.next !== undefined && !Array.isArray(o.next))
    throw new ConfigError('parse returned `next` that is not an array', {
      context: { field: 'next' },
    });
  if (o.items !== undefined) checkJsonValues(o.items);
  if (o.next !== undefined) checkJsonValues(o.next);
  return o;
}

/** Throws when a value of `values` can never be JSON (undefined, a function, a symbol, a bigint). */
function checkJsonValues(values: readonly unknown[]): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (
      v === undefined ||
      typeof v === 'function' ||
      typeof v === 'symbol' ||
      typeof v === 'bigint'
    )
      throw new ConfigError('parse returned a value that is not JSON', {
        context: { field: 'parse' },
      });
  }
}

/** One downloaded and parsed request: its output and the child nodes it makes. @internal */
export interface ParsedRequest {
  request: ResolvedRequest;
  out: ParseOutput;
  children: ChildInput[];
}
