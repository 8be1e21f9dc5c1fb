// `npm run bench:api [-- --records N --page P --latency MS --runs K]`: the api source end to end.
// A local HTTP server (its own process, so its memory is not ours) serves N users (default 100,000) in pages
// of P (100) with MS (5) ms added latency per page. Measured per run: fetch + map + render (the api source),
// then validate + stage (the receive step, as for an upload). Baseline, same run: the same pages fetched with
// the same HTTP client and only JSON.parse'd, nothing mapped or validated. Printed: records/s, network wait vs
// processing, the ratio to the network floor (pages × latency) and to the baseline, wall and CPU time, and
// peak RSS at N and at N/10 (it must not grow with the record count). The last line is one JSON object.
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { openApp, type App } from '../src/app.js';
import type { ApiSourceConfig } from '../src/config/source-schema.js';
import { receiveFile } from '../src/intake/receive.js';
import { ApiSource } from '../src/sources/api.js';
import { ApiClient } from '../src/sources/api/http.js';
import { Redactor } from '../src/sources/redact.js';
import { runFetch } from '../src/sources/run-fetch.js';

interface Args { records: number; page: number; latency: number; runs: number }

function parseArgs(argv: string[]): Args {
  const a: Args = { records: 100_000, page: 100, latency: 5, runs: 3 };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '') as keyof Args;
    if (!(key in a)) throw new Error(`unknown option ${argv[i]} (use --records, --page, --latency, --runs)`);
    a[key] = Number(argv[++i]);
  }
  return a;
}

// ---- the server process ---------------------------------------------------------------------------------------
function serve(records: number, latency: number): void {
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const offset = Number(u.searchParams.get('offset') ?? 0);
    const limit = Number(u.searchParams.get('limit') ?? 100);
    const data = [];
    for (let i = offset; i < Math.min(records, offset + limit); i++) {
      data.push({
        id: `u${i}`, name: { first: `First${i}`, last: `Last${i % 997}` }, work: { email: `user${i}@bench.example`, title: i % 3 ? 'Engineer' : 'Manager' },
        phone: `08-${String(100000 + i).slice(-6)}`, departments: [{ id: `d${i % 50}` }], active: i % 20 !== 0,
      });
    }
    const body = JSON.stringify({ data, meta: { total: records } });
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    }, latency);
  });
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as AddressInfo).port }));
}


// ---- the benchmark --------------------------------------------------------------------------------------------
async function startServer(records: number, latency: number): Promise<{ base: string; child: ChildProcess }> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', String(records), String(latency)], { execArgv: ['--import', 'tsx'] });
  const port = await new Promise<number>((resolve) => child.once('message', (m: { port: number }) => resolve(m.port)));
  return { base: `http://127.0.0.1:${port}`, child };
}

function sourceConfig(base: string, a: Args, records: number): ApiSourceConfig {
  return {
    type: 'api', schedule: '0 1 * * *', timezone: 'Europe/Stockholm', auth: { type: 'none' },
    timeouts: { connectSeconds: 10, readSeconds: 60 }, retry: { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 1000, maxRetryAfterSeconds: 10 },
    requestsPerMinute: 1_000_000, concurrency: 1, maxPages: Math.ceil(records / a.page) + 10, maxResponseBytes: 64 * 1024 * 1024,
    objects: {
      users: {
        request: { method: 'GET', url: `${base}/users`, query: {}, headers: {} },
        paging: { type: 'offset', offsetParam: 'offset', limitParam: 'limit', limit: a.page },
        stop: { emptyPage: true, shortPage: false, totalPath: 'meta.total' },
        records: 'data', totalPath: 'meta.total', coverage: [{ field: 'email', minPercent: 99 }],
        fields: {
          externalId: 'id', firstName: 'name.first', lastName: 'name.last', username: 'work.email', email: 'work.email',
          title: 'work.title', phone: 'phone', status: 'active', memberOf: 'departments[*].id',
        },
        valueMaps: { status: { true: 'active', false: 'inactive' } }, listSeparator: ',',
      },
    },
  } as ApiSourceConfig;
}

function workspace(cfg: ApiSourceConfig): { app: App; root: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'wt-bench-api-'));
  fs.mkdirSync(path.join(root, 'tenants'));
  fs.writeFileSync(path.join(root, 'wt-sync.yaml'), `dataDir: ${JSON.stringify(path.join(root, 'data'))}\ntenantsDir: ${JSON.stringify(path.join(root, 'tenants'))}\n`);
  fs.writeFileSync(path.join(root, 'tenants/bench.yaml'), JSON.stringify({ name: 'Bench', source: cfg }));
  return { app: openApp({ configPath: path.join(root, 'wt-sync.yaml'), logger: pino({ level: 'silent' }) }), root };
}

interface RunFigures { wallMs: number; cpuMs: number; fetchMs: number; networkMs: number; receiveMs: number; pages: number; records: number; peakRssMB: number }

function rssSampler(): { stop(): number } {
  let peak = process.memoryUsage().rss;
  const t = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
  return { stop: () => { clearInterval(t); return Math.max(peak, process.memoryUsage().rss) / 2 ** 20; } };
}

async function fullRun(base: string, a: Args, records: number): Promise<RunFigures> {
  const cfg = sourceConfig(base, a, records);
  const { app, root } = workspace(cfg);
  try {
    const tenant = app.tenant('bench');
    const source = new ApiSource(cfg);
    global.gc?.();
    const rss = rssSampler();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const outcome = await runFetch(app, tenant, { trigger: 'pull', source, env: {} });
    const t1 = performance.now();
    if (outcome.record.status !== 'ok') throw new Error(`fetch failed: ${outcome.record.error}`);
    const d = outcome.deliveries[0];
    const received = await receiveFile(app, tenant, d.inboxPath, { name: d.name, sha256: d.sha256, recordNumbers: true });
    const t2 = performance.now();
    const cpu = process.cpuUsage(cpu0);
    const peakRssMB = rss.stop();
    if (received.status !== 'accepted' || received.validRows !== records) throw new Error(`receive: ${received.status} ${received.validRows}/${records}: ${JSON.stringify(received.problems.slice(0, 3))}`);
    return {
      wallMs: t2 - t0, cpuMs: (cpu.user + cpu.system) / 1000, fetchMs: t1 - t0, networkMs: source.stats.networkMs, receiveMs: t2 - t1,
      pages: source.stats.pages, records, peakRssMB,
    };
  } finally {
    app.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** The same pages through the same client, JSON.parse only. */
async function baselineRun(base: string, a: Args, records: number): Promise<{ wallMs: number; cpuMs: number; pages: number }> {
  const cfg = sourceConfig(base, a, records);
  const client = new ApiClient(cfg, (s) => s, new Redactor(), pino({ level: 'silent' }));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let pages = 0;
  for (let offset = 0; ; offset += a.page) {
    const res = await client.send({ method: 'GET', url: `${base}/users?offset=${offset}&limit=${a.page}`, headers: {} }, 'baseline');
    pages++;
    if ((JSON.parse(res.body) as { data: unknown[] }).data.length === 0) break;
  }
  client.close();
  const cpu = process.cpuUsage(cpu0);
  return { wallMs: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000, pages };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const r1 = (x: number) => Math.round(x * 10) / 10;

async function main(a: Args): Promise<void> {
  const small = Math.max(a.page, Math.round(a.records / 10));
  const big = await startServer(a.records, a.latency);
  const little = await startServer(small, a.latency);
  try {
    console.log(`bench:api — ${a.records} users in pages of ${a.page}, ${a.latency} ms added latency per page, ${a.runs} runs (medians)`);
    const full: RunFigures[] = [];
    const base: { wallMs: number; cpuMs: number; pages: number }[] = [];
    for (let i = 0; i < a.runs; i++) {
      base.push(await baselineRun(big.base, a, a.records));
      full.push(await fullRun(big.base, a, a.records));
      const f = full[i];
      console.log(`  run ${i + 1}: fetch+map+validate+stage ${Math.round(f.wallMs)} ms (cpu ${Math.round(f.cpuMs)} ms; network wait ${Math.round(f.networkMs)} ms, receive ${Math.round(f.receiveMs)} ms), baseline ${Math.round(base[i].wallMs)} ms (cpu ${Math.round(base[i].cpuMs)} ms), peak RSS ${r1(f.peakRssMB)} MB`);
    }
    const smallRuns: RunFigures[] = [];
    for (let i = 0; i < a.runs; i++) smallRuns.push(await fullRun(little.base, a, small));

    const pages = full[0].pages;
    const floorMs = pages * a.latency;
    const wall = median(full.map((f) => f.wallMs));
    const cpu = median(full.map((f) => f.cpuMs));
    const network = median(full.map((f) => f.networkMs));
    const processing = median(full.map((f) => f.wallMs - f.networkMs));
    const baseWall = median(base.map((b) => b.wallMs));
    const baseCpu = median(base.map((b) => b.cpuMs));
    const rss = median(full.map((f) => f.peakRssMB));
    const rssSmall = median(smallRuns.map((f) => f.peakRssMB));
    const figures = {
      records: a.records, pageSize: a.page, latencyMs: a.latency, pages, runs: a.runs,
      recordsPerSecond: Math.round(a.records / (wall / 1000)),
      wallMs: Math.round(wall), cpuMs: Math.round(cpu),
      networkWaitMs: Math.round(network), processingMs: Math.round(processing),
      networkFloorMs: floorMs, ratioToNetworkFloor: r1(wall / floorMs),
      baselineWallMs: Math.round(baseWall), baselineCpuMs: Math.round(baseCpu), ratioToBaseline: r1(wall / baseWall),
      peakRssMB: r1(rss), peakRssMBAtTenth: r1(rssSmall), smallRecords: small,
    };
    console.log('');
    console.log(`records/s                 ${figures.recordsPerSecond}  (${figures.wallMs} ms wall, ${figures.cpuMs} ms CPU)`);
    console.log(`network wait / processing ${figures.networkWaitMs} ms / ${figures.processingMs} ms`);
    console.log(`network floor             ${floorMs} ms (${pages} pages × ${a.latency} ms) → ratio ${figures.ratioToNetworkFloor}×`);
    console.log(`baseline (fetch + JSON.parse only) ${figures.baselineWallMs} ms wall, ${figures.baselineCpuMs} ms CPU → ratio ${figures.ratioToBaseline}×`);
    console.log(`peak RSS                  ${figures.peakRssMB} MB at ${a.records} records, ${figures.peakRssMBAtTenth} MB at ${small}`);
    console.log(JSON.stringify(figures));
  } finally {
    big.child.kill();
    little.child.kill();
  }
}

if (process.argv[2] === '--serve') {
  serve(Number(process.argv[3]), Number(process.argv[4]));
} else {
  await main(parseArgs(process.argv.slice(2)));
}
