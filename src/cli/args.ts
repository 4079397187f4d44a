/**
 * The `mocra` command line: its arguments, read without a dependency. Unknown options and
 * missing values are usage errors naming the option.
 */

/** What the command line asks for. @internal */
export interface CliArgs {
  /** `inspect`, `inspect run`, `dead-letters list`, `dead-letters replay` or `help`. */
  command: 'inspect' | 'inspect-run' | 'dead-letters-list' | 'dead-letters-replay' | 'help';
  /** The run of `inspect run <runId>`. */
  runId?: string;
  /** Redis URL (this or `dataDir`). */
  redis?: string;
  /** A durable store's data directory (this or `redis`). */
  dataDir?: string;
  /** The store's key prefix (the backend's `keyPrefix`). */
  prefix: string;
  /** The chain's key prefix (`ChainKeyBuilder`'s `prefix`). */
  chainPrefix: string;
  /** Machine-readable output. */
  json: boolean;
  /** Dead letters to replay, by id (all when empty). */
  ids: string[];
  /** Dead-letter queues to read (all three when empty). */
  queues: ('task' | 'parser' | 'error')[];
}

/** A usage error: the message says what is wrong. @internal */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The help text. @internal */
export const USAGE = `usage:
  mocra inspect <store> [--prefix <p>] [--json]
      runs with their state and progress per module
  mocra inspect run <runId> <store> [--prefix <p>] [--json]
      one run: its modules, its retry queue, the leases held and its dead letters
  mocra dead-letters list <store> [--prefix <p>] [--queue <task|parser|error>] [--json]
  mocra dead-letters replay <store> [--prefix <p>] [--queue <q>] [--id <id>]... [--json]
      publish dead letters to their queue again (after a fix) and remove them

<store> is one of:
  --redis <url>          the Redis the workers share (redis://host:port/db; on a
                         Redis Cluster, any one of its nodes)
  --data-dir <path>      the data directory of a durable single-node store; read while the
                         workers run, but a replay needs them stopped (it takes the lock)

options:
  --prefix <p>           the store's key prefix (the backend's keyPrefix), default ''
  --chain-prefix <p>     the chain's key prefix (ChainKeyBuilder prefix), default 'chain'
  --queue <q>            task, parser or error (repeatable); default all three
  --id <id>              a dead letter's id (repeatable); default all
  --json                 JSON on stdout instead of tables
`;

const QUEUES = ['task', 'parser', 'error'] as const;

/**
 * Reads the arguments after `mocra`.
 * @throws {@link UsageError} naming what is wrong.
 * @internal
 */
export function parseArgs(argv: readonly string[]): CliArgs {
  const words: string[] = [];
  const out: CliArgs = {
    command: 'help',
    prefix: '',
    chainPrefix: 'chain',
    json: false,
    ids: [],
    queues: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new UsageError(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--redis':
        out.redis = value();
        break;
      case '--data-dir':
        out.dataDir = value();
        // '' would resolve to the working directory
        if (out.dataDir === '') throw new UsageError(`${a} needs a value`);
        break;
      case '--prefix':
        out.prefix = value();
        break;
      case '--chain-prefix':
        out.chainPrefix = value();
        break;
      case '--json':
        out.json = true;
        break;
      case '--id':
        out.ids.push(value());
        break;
      case '--queue': {
        const q = value();
        if (!(QUEUES as readonly string[]).includes(q))
          throw new UsageError(`--queue must be task, parser or error, not ${JSON.stringify(q)}`);
        out.queues.push(q as (typeof QUEUES)[number]);
        break;
      }
      case '-h':
      case '--help':
        return { ...out, command: 'help' };
      default:
        if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
        words.push(a);
    }
  }
  const [first, second, third, ...rest] = words;
  if (first === undefined || first === 'help') return out;
  if (first === 'inspect' && second === undefined) out.command = 'inspect';
  else if (first === 'inspect' && second === 'run') {
    if (third === undefined) throw new UsageError('inspect run needs a <runId>');
    out.command = 'inspect-run';
    out.runId = third;
  } else if (first === 'dead-letters' && (second === 'list' || second === undefined))
    out.command = 'dead-letters-list';
  else if (first === 'dead-letters' && second === 'replay') out.command = 'dead-letters-replay';
  else throw new UsageError(`unknown command: ${words.join(' ')}`);
  if (rest.length > 0 || (out.command !== 'inspect-run' && third !== undefined))
    throw new UsageError(`unexpected argument ${JSON.stringify(rest[0] ?? third)}`);
  if (out.redis !== undefined && out.dataDir !== undefined)
    throw new UsageError('give --redis <url> or --data-dir <path>, not both');
  if (out.redis === undefined && out.dataDir === undefined)
    throw new UsageError('--redis <url> or --data-dir <path> is required');
  return out;
}
