/**
 * Starts a private Redis Cluster (3 masters, no replicas) on free loopback ports in a temporary
 * directory, and stops it and removes the directory after. Needs redis-server and redis-cli
 * (Debian: redis-server, which pulls in redis-tools). No test runner here: the tests use it
 * through redis-cluster.ts (which adds `describeCluster`), bench/distributed directly.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { waitForPong } from './redis-server.js';

/** One node of a test cluster. */
export interface ClusterNodeAddress {
  readonly host: string;
  readonly port: number;
}

/** A running test cluster. */
export interface RedisClusterHandle {
  /** The masters, in start order (pass them to ioredis `Cluster` or `{ cluster: nodes }`). */
  readonly nodes: readonly ClusterNodeAddress[];
  /** The temporary directory holding the nodes' cluster config files. */
  readonly dir: string;
  /** A plain client on one node (for SCRIPT FLUSH, DBSIZE…); closed on {@link stop}. */
  nodeClient(port: number): Redis;
  /** Kills one node abruptly (SIGKILL), as a crash would. */
  kill(port: number): Promise<void>;
  /** Stops every node (SIGTERM, SIGKILL after 5 s) and removes the directory. */
  stop(): Promise<void>;
}

function binary(name: string): string | null {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const path = found.stdout.trim();
  return found.status === 0 && path ? path : null;
}

/** The redis-server and redis-cli binaries, or null when either is missing. */
export function clusterBinaries(): { server: string; cli: string } | null {
  const server = binary('redis-server');
  const cli = binary('redis-cli');
  return server && cli ? { server, cli } : null;
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A port P such that P and its cluster bus port P + 10000 are both free right now. Drawn from
 * 20000..29999 so that the bus port stays below the ephemeral range.
 */
async function freeClusterPort(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    if (taken.has(port)) continue;
    if ((await portIsFree(port)) && (await portIsFree(port + 10_000))) {
      taken.add(port);
      return port;
    }
  }
  throw new Error('no free port pair (P, P + 10000) for a cluster node');
}

function run(
  command: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => (out += c.toString()));
    child.stderr.on('data', (c) => (out += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} timed out after ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

async function stopProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const force = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    proc.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    proc.kill('SIGTERM');
  });
}

/**
 * Starts `masters` (default 3) cluster-enabled redis-servers, joins them with
 * `redis-cli --cluster create`, and waits until every node reports `cluster_state:ok` and knows
 * every other node.
 */
export async function startRedisCluster(
  options: { masters?: number; timeoutMs?: number } = {},
): Promise<RedisClusterHandle> {
  const bins = clusterBinaries();
  if (!bins) throw new Error('redis-server or redis-cli is not installed');
  const masters = options.masters ?? 3;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  const dir = mkdtempSync(join(tmpdir(), 'mocra-cluster-'));
  const procs: ChildProcess[] = [];
  const byPort = new Map<number, ChildProcess>();
  const clients: Redis[] = [];
  const nodes: ClusterNodeAddress[] = [];

  const stop = async (): Promise<void> => {
    await Promise.all(clients.splice(0).map((c) => c.quit().catch(() => c.disconnect())));
    await Promise.all(procs.splice(0).map(stopProcess));
    rmSync(dir, { recursive: true, force: true });
  };

  const nodeClient = (port: number): Redis => {
    const c = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, lazyConnect: false });
    c.on('error', () => {}); // a stopped node; commands report it
    clients.push(c);
    return c;
  };

  try {
    const taken = new Set<number>();
    for (let i = 0; i < masters; i++) {
      const port = await freeClusterPort(taken);
      const args = [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout',
        '5000',
        '--appendonly',
        'no',
        '--save',
        '',
        '--dir',
        dir,
        '--daemonize',
        'no',
        '--logfile',
        '',
        '--loglevel',
        'warning',
      ];
      const child = spawn(bins.server, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      procs.push(child);
      byPort.set(port, child);
      let stderr = '';
      child.stderr?.on('data', (c) => (stderr += c.toString()));
      const exited = new Promise<never>((_, reject) =>
        child.once('exit', (code) =>
          reject(new Error(`cluster node on port ${port} exited early (${code}): ${stderr}`)),
        ),
      );
      await Promise.race([waitForPong(port, Math.max(1_000, deadline - Date.now())), exited]);
      child.removeAllListeners('exit');
      nodes.push({ host: '127.0.0.1', port });
    }

    const created = await run(
      bins.cli,
      [
        '--cluster',
        'create',
        ...nodes.map((n) => `${n.host}:${n.port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      Math.max(1_000, deadline - Date.now()),
    );
    if (created.code !== 0) {
      throw new Error(`redis-cli --cluster create failed (${created.code}):\n${created.out}`);
    }

    const admin = nodes.map((n) => nodeClient(n.port));
    for (;;) {
      const infos = await Promise.all(
        admin.map((c) => c.call('CLUSTER', 'INFO').then(String, () => '')),
      );
      const ready = infos.every(
        (info) =>
          info.includes('cluster_state:ok') &&
          info.includes(`cluster_known_nodes:${masters}`) &&
          info.includes('cluster_slots_ok:16384'),
      );
      if (ready) break;
      if (Date.now() > deadline) {
        throw new Error(`the cluster did not reach cluster_state:ok:\n${infos.join('\n---\n')}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (error) {
    await stop();
    throw error;
  }

  const kill = async (port: number): Promise<void> => {
    const proc = byPort.get(port);
    if (!proc) throw new Error(`no cluster node on port ${port}`);
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGKILL');
    });
  };

  return { nodes, dir, nodeClient, kill, stop };
}
