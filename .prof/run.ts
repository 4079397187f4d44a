import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { RedisBackend, createChainEngine, createRedisStreamQueues } from '../src/index.js';
import { startRedisServer } from '../test/helpers/redis-server.js';
import { syntheticDownloader, syntheticModule, NODES_PER_TASK } from '../bench/distributed/synthetic.js';

const server = await startRedisServer();
const url = server.url;
const store = new RedisBackend({ redis: url, keyPrefix: 'p:' });
const client = new Redis(url);
const queues = createRedisStreamQueues({ client, keyPrefix: 'p:', consumer: 'w', blockMs: 100 });
let nodes = 0;
const engine = createChainEngine({
  modules: [syntheticModule()], downloader: syntheticDownloader, store, queues, workerId: 'w',
  concurrency: { parser: 16, download: 32 },
  rateLimit: { global: false, perKey: { rate: 1_000_000, intervalMs: 1000, burst: 100_000 } },
  onItem: () => {},
});
engine.on('ModuleStepAdvanced', () => void nodes++);
await store.connect();
await engine.start();
const run = async (i: number) => {
  const base = nodes;
  await engine.submit({ taskId: `t${i}`, account: 'a', platform: 'p', modules: ['synthetic'] });
  while (nodes - base < NODES_PER_TASK) await new Promise((r) => setTimeout(r, 5));
};
await run(0);
const session = new Session();
session.connect();
await session.post('Profiler.enable');
await session.post('Profiler.start');
const cpu0 = process.cpuUsage();
for (let i = 1; i <= 3; i++) await run(i);
const cpu = process.cpuUsage(cpu0);
const { profile } = await session.post('Profiler.stop');
console.log('µs per node', ((cpu.user + cpu.system) / (3 * NODES_PER_TASK)).toFixed(0));
writeFileSync('.prof/p.cpuprofile', JSON.stringify(profile));
// self time by function
const self = new Map<string, number>();
const dt = profile.timeDeltas!;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const counts = new Map<number, number>();
profile.samples!.forEach((id, i) => counts.set(id, (counts.get(id) ?? 0) + (dt[i] ?? 0)));
for (const [id, t] of counts) {
  const n = byId.get(id)!;
  const k = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber}`;
  self.set(k, (self.get(k) ?? 0) + t);
}
const total = [...self.values()].reduce((a, b) => a + b, 0);
for (const [k, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 35)) console.log((100 * t / total).toFixed(1).padStart(5), k);
await engine.stop();
await Promise.all(Object.values(queues).map((q) => q.shutdown()));
await store.close();
client.disconnect();
await server.stop();
