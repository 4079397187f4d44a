/**
 * The `mocra` command: `inspect` (runs and their progress per module), `inspect run <runId>`
 * (a run with its retry queue, the leases held and its dead letters) and `dead-letters
 * list|replay`, against a Redis (`--redis`) or a durable data directory (`--data-dir`). Tables for people, `--json` for scripts; an error is one line on stderr and a
 * non-zero exit code (2 for a usage error).
 */
import { isMocraError } from '../errors.js';
import { parseArgs, USAGE, UsageError, type CliArgs } from './args.js';
import { deadLettersTable, runDetail, runsTable } from './format.js';
import { DurableSource } from './durable-source.js';
import { RedisSource } from './redis-source.js';
import type { Source } from './source.js';

/** Where the command writes. @internal */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

/**
 * Runs the command line `argv` (the words after `mocra`); resolves with the exit code.
 * @internal
 */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  let args: CliArgs;
  try {
    args = parseArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(`mocra: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  if (args.command === 'help') {
    io.out(USAGE);
    return 0;
  }
  let source: Source | undefined;
  try {
    source = await openSource(args);
    await run(source, args, io);
    return 0;
  } catch (error) {
    const code = isMocraError(error) ? ` [${error.code}]` : '';
    io.err(`mocra: ${(error as Error).message}${code}\n`);
    return 1;
  } finally {
    await source?.close();
  }
}

/** The store the command line names: a Redis, or a durable data directory (locked to replay). */
function openSource(args: CliArgs): Promise<Source> {
  if (args.redis !== undefined) return RedisSource.open(args.redis, args.prefix, args.chainPrefix);
  return DurableSource.open(args.dataDir!, args.prefix, args.chainPrefix, {
    write: args.command === 'dead-letters-replay',
  });
}

const print = (io: CliIo, json: boolean, value: unknown, text: () => string): void =>
  io.out(json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);

async function run(source: Source, args: CliArgs, io: CliIo): Promise<void> {
  switch (args.command) {
    case 'inspect': {
      const runs = await source.runs();
      print(io, args.json, { runs }, () => runsTable(runs));
      return;
    }
    case 'inspect-run': {
      const run = await source.run(args.runId!);
      const [retries, leases, all] = await Promise.all([
        source.retries(run.taskId, run.runId),
        source.leases(run.taskId, run.runId),
        source.deadLetters(args.queues),
      ]);
      const deadLetters = all.filter((d) => d.runId === run.runId);
      print(io, args.json, { run, retries, leases, deadLetters }, () =>
        runDetail(run, retries, leases, deadLetters),
      );
      return;
    }
    case 'dead-letters-list': {
      const deadLetters = await source.deadLetters(args.queues);
      print(io, args.json, { deadLetters }, () => deadLettersTable(deadLetters));
      return;
    }
    case 'dead-letters-replay': {
      const all = await source.deadLetters(args.queues);
      const unknown = args.ids.filter((id) => !all.some((d) => d.id === id));
      if (unknown.length > 0)
        throw new Error(
          `no dead letter with id ${unknown.map((id) => JSON.stringify(id)).join(', ')}`,
        );
      const chosen = args.ids.length === 0 ? all : all.filter((d) => args.ids.includes(d.id));
      const replayed = await source.replay(chosen);
      print(io, args.json, { replayed }, () =>
        replayed.length === 0
          ? 'nothing to replay'
          : `replayed ${replayed.length}:\n${deadLettersTable(replayed)}`,
      );
      return;
    }
  }
}
