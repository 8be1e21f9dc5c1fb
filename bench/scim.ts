// npm run bench:scim — the SCIM target applying a first load of BENCH_SCIM_USERS (default 10,000) user creates, then
// a 1 % update day (last names changed: one PATCH each), to the local SCIM server (scimmy on express, its own
// process) with BENCH_SCIM_LATENCY_MS (default 5) added per request, at concurrency 1, 4 and 8
// (BENCH_SCIM_CONCURRENCY). Prints operations per second and the ratio to the floor, concurrency ÷ latency (the
// rate a client waiting only on the added latency would reach), with wall and CPU time, and beside it a baseline
// measured in the same run: bare POSTs of BENCH_SCIM_BASELINE (default 2,000) users by the same HTTP client at the
// same concurrency, without plan, journal or mirror (what the server itself allows). Last line JSON.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import pino from 'pino';
import { reconcile } from '../src/apply/run.js';
import { ScimClient } from '../src/targets/scim-client.js';
import { userResource } from '../src/targets/scim-resources.js';
import { receiveFile } from '../src/intake/receive.js';
import { makeWorkspace, REPO, TSX, usersCsv } from '../test/helpers/workspace.js';

const USERS = Number(process.env.BENCH_SCIM_USERS ?? 10_000);
const LATENCY_MS = Number(process.env.BENCH_SCIM_LATENCY_MS ?? 5);
const LEVELS = (process.env.BENCH_SCIM_CONCURRENCY ?? '1,4,8').split(',').map(Number);
const TOKEN_ENV = 'WT_SCIM_TOKEN_BENCH';
const BASELINE = Number(process.env.BENCH_SCIM_BASELINE ?? 2000);

/** Requests per second of bare user POSTs on a fresh server: the server's own ceiling at this concurrency. */
async function baseline(concurrency: number): Promise<number> {
  const server = await startServer();
  const client = new ScimClient({
    baseUrl: server.url, token: server.token, concurrency, connectTimeoutMs: 10_000, responseTimeoutMs: 60_000, maxAttempts: 1,
    backoffBaseMs: 0, backoffMaxMs: 0, maxRetryAfterMs: 0, pageSize: 100, logger: pino({ level: 'silent' }),
  });
  const opts = { patchDialect: 'rfc', groupParents: 'omit' } as const;
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: BASELINE }, (_, i) => client.post('Users', userResource(`b${i}`, { username: `b${i}@example.com`, firstName: 'B', lastName: `L${i}` }, opts))));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  client.close();
  await server.stop();
  return BASELINE / seconds;
}

interface Server { url: string; token: string; stop(): Promise<{ serverCpuMs: number; users: number }> }

async function startServer(): Promise<Server> {
  const child = spawn(process.execPath, ['--import', TSX, path.join(REPO, 'bench/scim-server.ts')], {
    env: { ...process.env, SCIM_LATENCY_MS: String(LATENCY_MS) }, stdio: ['pipe', 'pipe', 'pipe'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`SCIM server exited with ${code}`)));
  });
  const { url, token } = JSON.parse(line) as { url: string; token: string };
  return {
    url, token,
    stop: () => new Promise((resolve) => {
      createInterface({ input: child.stderr }).on('line', (l) => {
        if (l.startsWith('{"serverCpuMs"')) resolve(JSON.parse(l));
      });
      child.stdin.end();
    }),
  };
}

const id = (i: number) => `u${String(i).padStart(6, '0')}`;
const day1 = usersCsv(Array.from({ length: USERS }, (_, i) => ({ id: id(i) })));
const day2 = usersCsv(Array.from({ length: USERS }, (_, i) => ({ id: id(i), last: i % 100 === 7 ? `Changed-${i}` : undefined })));

interface Figure { ops: number; wallS: number; cpuS: number; opsPerS: number; floor: number; ratio: number; baseline?: number; ratioToBaseline?: number }

async function timed(fn: () => Promise<number>, concurrency: number): Promise<Figure> {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const ops = await fn();
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(c0);
  const floor = concurrency / (LATENCY_MS / 1000);
  const opsPerS = ops / wallS;
  return { ops, wallS: round(wallS), cpuS: round((cpu.user + cpu.system) / 1e6), opsPerS: round(opsPerS), floor, ratio: round(opsPerS / floor, 3) };
}

function round(n: number, d = 2): number {
  return Math.round(n * 10 ** d) / 10 ** d;
}

const results: Record<string, { creates: Figure; updates: Figure; serverCpuS: number; baselinePostsPerS: number }> = {};
console.log(`bench:scim — ${USERS} creates, then ${Math.ceil(USERS / 100)} updates; ${LATENCY_MS} ms added per request; floor = concurrency ÷ latency`);
for (const concurrency of LEVELS) {
  const base = await baseline(concurrency);
  const server = await startServer();
  process.env[TOKEN_ENV] = server.token;
  const ws = makeWorkspace();
  ws.tenant('acme', { target: { type: 'scim', baseUrl: server.url, tokenEnv: TOKEN_ENV, concurrency } });
  const app = ws.open();
  const run = async (name: string, body: string) => {
    const file = await receiveFile(app, app.tenant('acme'), ws.file(name, body));
    const report = await reconcile(app, app.tenant('acme'), { kind: 'ingest', fileIds: [file.id] });
    if (!report || report.counts.failed > 0) throw new Error(`${name}: ${report?.counts.failed} operations failed`);
    return report.operations.length;
  };
  // Receiving and parsing are not the target's work: timed is the whole reconcile (plan + apply).
  const creates = await timed(() => run('users-day1.csv', day1), concurrency);
  const updates = await timed(() => run('users-day2.csv', day2), concurrency);
  app.close();
  ws.cleanup();
  const { serverCpuMs, users } = await server.stop();
  if (users !== USERS) throw new Error(`the server holds ${users} users, expected ${USERS}`);
  creates.baseline = round(base);
  creates.ratioToBaseline = round(creates.opsPerS / base, 3);
  results[`c${concurrency}`] = { creates, updates, serverCpuS: round(serverCpuMs / 1000), baselinePostsPerS: round(base) };
  for (const [name, f] of [['creates', creates], ['updates', updates]] as const) {
    console.log(`concurrency ${concurrency} ${name.padEnd(7)}: ${f.ops} ops in ${f.wallS} s wall (${f.cpuS} s CPU wt-sync) = ${f.opsPerS} ops/s; floor ${f.floor}/s; ratio ${f.ratio}`);
  }
  console.log(`concurrency ${concurrency} baseline (bare POSTs, same client and server): ${round(base)} req/s; creates reach ${creates.ratioToBaseline} of it; server CPU during the run ${round(serverCpuMs / 1000)} s`);
}
console.log(JSON.stringify({ bench: 'scim', users: USERS, latencyMs: LATENCY_MS, results }));
