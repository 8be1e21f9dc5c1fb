// No Docker engine runs here, so this replays the Dockerfile itself, step by step, in a temporary copy: each
// stage's COPY, RUN, ENV, WORKDIR and USER (npm ci, build, prune to production dependencies, copy what the
// runtime stage copies), then starts the runtime stage's CMD as an unprivileged user, checks /healthz and
// /readyz, uploads examples/ with OpenSSH sftp and reads the report back. Only `apt-get` lines are not run:
// their packages (python3, make, g++) are on the test machine. To keep the suite fast, `npm ci` takes packages
// from the npm cache and better-sqlite3's native binary from this worktree's own build of the same version
// (through prebuild-install's local-prebuilds, the path a download would take); compiling it again costs minutes.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, sshOptions, waitFor } from '../sftp/helpers.js';
import { startProcess, type ServeProcess } from '../helpers/serve.js';
import { REPO } from '../helpers/workspace.js';

interface Instruction { op: string; args: string }
interface Stage { name: string; base: string; steps: Instruction[] }

/** Instructions of each stage, continuation lines joined, comments dropped. */
export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const line of lines) {
    const [, op, args] = /^(\w+)\s+(.*)$/.exec(line)!;
    if (op.toUpperCase() === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args)!;
      stages.push({ base: m[1], name: m[2] ?? String(stages.length), steps: [] });
    } else {
      stages.at(-1)!.steps.push({ op: op.toUpperCase(), args });
    }
  }
  return stages;
}

/** better-sqlite3 as built by this worktree's npm ci, offered to prebuild-install; none when versions differ. */
function localPrebuilds(tmp: string): Record<string, string> {
  const pkg = path.join(REPO, 'node_modules/better-sqlite3');
  const lock = JSON.parse(fs.readFileSync(path.join(REPO, 'package-lock.json'), 'utf8')).packages['node_modules/better-sqlite3']?.version;
  const { version } = JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8'));
  if (version !== lock || !fs.existsSync(path.join(pkg, 'build/Release/better_sqlite3.node'))) return {};
  const dir = path.join(tmp, 'prebuilds');
  fs.mkdirSync(dir);
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  const tar = spawnSync('tar', ['-czf', path.join(dir, name), '-C', pkg, 'build/Release/better_sqlite3.node']);
  return tar.status === 0 ? { npm_config_better_sqlite3_local_prebuilds: dir } : {};
}

const RUN_AS = { user: 'nobody', uid: 65534, gid: 65534, group: 'nogroup' };

interface StageResult { root: string; env: Record<string, string>; user: string | null; cmd: string[]; workdir: string; volumes: string[]; expose: string[]; healthcheck: string; skipped: string[] }

function replayStage(stage: Stage, tmp: string, results: Map<string, StageResult>, buildEnv: Record<string, string>): StageResult {
  const root = path.join(tmp, stage.name);
  fs.mkdirSync(root, { recursive: true });
  const r: StageResult = { root, env: {}, user: null, cmd: [], workdir: '/', volumes: [], expose: [], healthcheck: '', skipped: [] };
  const inRoot = (p: string) => path.join(root, path.posix.isAbsolute(p) ? p : path.posix.join(r.workdir, p));
  for (const { op, args } of stage.steps) {
    if (op === 'WORKDIR') {
      r.workdir = args;
      fs.mkdirSync(inRoot('.'), { recursive: true });
    } else if (op === 'ENV') {
      for (const m of args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) r.env[m[1]] = m[2].replace(/^"|"$/g, '');
    } else if (op === 'COPY') {
      const parts = args.split(/\s+/);
      const from = parts[0].startsWith('--from=') ? parts.shift()!.slice(7) : null;
      const dest = parts.pop()!;
      for (const src of parts) {
        const source = from ? path.join(results.get(from)!.root, src) : path.join(REPO, src);
        const target = dest.endsWith('/') || parts.length > 1 ? path.join(inRoot(dest), path.basename(src)) : inRoot(dest);
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.cpSync(source, target, { recursive: true, verbatimSymlinks: true });
      }
    } else if (op === 'RUN') {
      if (/^apt-get\b/.test(args)) {
        r.skipped.push(args);
        continue;
      }
      // Absolute paths live under this stage's root; the image's `node` user is an unprivileged user here.
      const cmd = args.replace(/(^|[\s=])\/app\b/g, `$1${root}/app`).replace(/\bnode:node\b/g, `${RUN_AS.user}:${RUN_AS.group}`).replace(/\bnpm ci\b/, 'npm ci --prefer-offline');
      const res = spawnSync('bash', ['-c', cmd], { cwd: inRoot('.'), env: { ...process.env, ...buildEnv, ...r.env, NODE_ENV: r.env.NODE_ENV ?? '' }, encoding: 'utf8', timeout: 600_000, maxBuffer: 64 * 1024 * 1024 });
      if (res.status !== 0) throw new Error(`RUN ${args} failed (${res.status}):\n${res.stdout}\n${res.stderr}`);
    } else if (op === 'USER') {
      r.user = args;
    } else if (op === 'CMD') {
      r.cmd = JSON.parse(args);
    } else if (op === 'VOLUME') {
      r.volumes = JSON.parse(args);
    } else if (op === 'EXPOSE') {
      r.expose = args.split(/\s+/);
    } else if (op === 'HEALTHCHECK') {
      r.healthcheck = args;
    } else if (op !== 'STOPSIGNAL') {
      throw new Error(`the replay does not know the Dockerfile instruction ${op}; teach it, or keep the Dockerfile simple`);
    }
  }
  return r;
}

let tmp: string;
let runtime: StageResult;
let stages: Stage[];
let server: ServeProcess;
let app: string;

beforeAll(async () => {
  stages = parseDockerfile(fs.readFileSync(path.join(REPO, 'Dockerfile'), 'utf8'));
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wt-sync-image-'));
  fs.chmodSync(tmp, 0o755);
  const results = new Map<string, StageResult>();
  const buildEnv = localPrebuilds(tmp);
  for (const stage of stages) results.set(stage.name, replayStage(stage, tmp, results, buildEnv));
  runtime = results.get(stages.at(-1)!.name)!;
  app = path.join(runtime.root, runtime.workdir);
  const [cmd, ...args] = runtime.cmd;
  server = await startProcess(cmd === 'node' ? process.execPath : cmd, args, {
    cwd: app, uid: RUN_AS.uid, gid: RUN_AS.gid,
    // What `docker run` gives: the image's ENV; ports are free ones here instead of the exposed 2222/8080.
    env: { PATH: process.env.PATH!, HOME: app, ...runtime.env, WT_SYNC_SFTP_PORT: '0', WT_SYNC_HTTP_PORT: '0' },
  });
}, 900_000);

afterAll(async () => {
  await server?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('the Dockerfile, replayed', () => {
  it('has a build stage and a runtime stage on Node 20 slim Debian, the runtime with production dependencies only', () => {
    expect(stages.map((s) => s.base)).toEqual(['node:20-bookworm-slim', 'node:20-bookworm-slim']);
    expect(fs.existsSync(path.join(app, 'dist/cli.js'))).toBe(true);
    expect(fs.existsSync(path.join(app, 'src'))).toBe(false);
    for (const dev of ['vitest', 'typescript', 'tsx', 'smtp-server']) expect(fs.existsSync(path.join(app, 'node_modules', dev)), dev).toBe(false);
    for (const dep of ['better-sqlite3', 'fastify', 'ssh2', 'nodemailer', 'prom-client']) expect(fs.existsSync(path.join(app, 'node_modules', dep)), dep).toBe(true);
    expect(runtime.volumes).toEqual(['/app/data', '/app/keys', '/app/config']);
    expect(runtime.expose).toEqual(['2222', '8080']);
    expect(runtime.healthcheck).toMatch(/\/healthz/);
    expect(runtime.user).toBe('node');
    expect(runtime.skipped.every((s) => s.startsWith('apt-get'))).toBe(true);
  });

  it('runs as an unprivileged user and answers /healthz and /readyz', async () => {
    const uid = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${server.child.pid}/status`, 'utf8'))![1];
    expect(Number(uid)).toBe(RUN_AS.uid);
    const health = await fetch(`http://127.0.0.1:${server.httpPort}/healthz`);
    expect(health.status).toBe(200);
    const ready = await fetch(`http://127.0.0.1:${server.httpPort}/readyz`);
    expect(ready.status, await ready.clone().text()).toBe(200);
    // The healthcheck command itself, as Docker would run it inside the container.
    const hc = JSON.parse(/CMD (\[.*\])$/.exec(runtime.healthcheck)![1]) as string[];
    const probe = spawnSync(process.execPath, hc.slice(1), { env: { ...process.env, WT_SYNC_HTTP_PORT: String(server.httpPort) }, timeout: 10_000 });
    expect(probe.status).toBe(0);
  });

  it('takes the examples over SFTP as the start-up message says, and the customer reads the report', async () => {
    expect(server.stdout()).toContain("echo 'put examples/*.csv' | sftp -b - -i keys/tenants/demo/id_ed25519");
    const key = path.join(app, 'keys/tenants/demo/id_ed25519');
    const sftp = (lines: string[]) => run('sftp', [...sshOptions(server.sftpPort, key), '-P', String(server.sftpPort), '-b', '-', 'demo@127.0.0.1'], { input: lines.join('\n') + '\n', cwd: app });
    const put = await sftp(['put examples/*.csv']);
    expect(put.code, put.stderr).toBe(0);
    const reports = path.join(app, 'data/tenants/demo/home/reports');
    await waitFor(() => fs.existsSync(reports) && fs.readdirSync(reports).some((f) => f.endsWith('.txt')), 30_000, 'the report');
    const name = fs.readdirSync(reports).find((f) => f.endsWith('.txt'))!;
    const copy = path.join(tmp, 'report-read-back.txt');
    const get = await sftp([`get reports/${name} ${copy}`]);
    expect(get.code, get.stderr).toBe(0);
    const report = fs.readFileSync(copy, 'utf8');
    expect(report).toMatch(/status: applied/);
    expect(report).toMatch(/counts: created 37/);
    expect(fs.statSync(path.join(app, 'data/wt-sync.sqlite')).uid).toBe(RUN_AS.uid);
  }, 60_000);

  it('stops gracefully on SIGTERM (what docker stop sends)', async () => {
    expect(await server.stop()).toBe(0);
    expect(server.stderr()).toMatch(/"msg":"stopped"/);
  }, 60_000);
});
