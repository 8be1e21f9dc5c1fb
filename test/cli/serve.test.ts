// `wt-sync serve` as a real process: OpenSSH sftp uploads, the watcher, settle and cron triggers, reports read
// back over SFTP, /healthz, and a clean exit on SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateClientKeyPair } from '../../src/sftp/host-key.js';
import { run, sshOptions, waitFor } from '../sftp/helpers.js';
import { startServe, type ServeProcess } from '../helpers/serve.js';
import { CLI, makeWorkspace, REPO, TSX, type Workspace } from '../helpers/workspace.js';

type Server = ServeProcess;
const stop = (server: Server) => server.stop();

function sftp(port: number, key: string, tenant: string, lines: string[], cwd: string) {
  return run('sftp', [...sshOptions(port, key), '-P', String(port), '-b', '-', `${tenant}@127.0.0.1`], { input: lines.join('\n') + '\n', cwd });
}

const reportsOf = (ws: Workspace, tenant: string) => {
  const dir = path.join(ws.dir, 'data/tenants', tenant, 'home/reports');
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.txt')).sort() : [];
};

describe('serve on a fresh folder', () => {
  let ws: Workspace;
  let server: Server;
  beforeAll(async () => {
    ws = makeWorkspace();
    fs.cpSync(path.join(REPO, 'examples'), path.join(ws.dir, 'examples'), { recursive: true });
    server = await startServe(ws, ['--settle-seconds', '1']);
  }, 60_000);
  afterAll(async () => {
    await stop(server);
    ws.cleanup();
  });

  it('creates the host key and a demo tenant, and prints how to upload', () => {
    const hostKey = path.join(ws.dir, 'keys/host/ssh_host_ed25519_key');
    expect(fs.statSync(hostKey).mode & 0o777).toBe(0o600);
    expect(server.stdout()).toMatch(/host key SHA256:[A-Za-z0-9+/]{43}/);
    expect(server.stdout()).toContain("echo 'put examples/*.csv' | sftp -b - -i keys/tenants/demo/id_ed25519");
    expect(fs.existsSync(path.join(ws.dir, 'config/tenants/demo.yaml'))).toBe(true);
  });

  it('answers /healthz', async () => {
    const res = await fetch(`http://127.0.0.1:${server.httpPort}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('reconciles an OpenSSH upload once it settles, and the customer reads the report back', async () => {
    const key = path.join(ws.dir, 'keys/tenants/demo/id_ed25519');
    const put = await sftp(server.sftpPort, key, 'demo', ['put examples/*.csv', 'ls'], ws.dir);
    expect(put.code, put.stderr).toBe(0);
    // One settle window for the three files: one run, one report.
    await waitFor(() => reportsOf(ws, 'demo').length === 1, 15_000, 'the report');
    const name = reportsOf(ws, 'demo')[0];
    const get = await sftp(server.sftpPort, key, 'demo', [`get reports/${name} got.txt`], ws.dir);
    expect(get.code, get.stderr).toBe(0);
    const report = fs.readFileSync(path.join(ws.dir, 'got.txt'), 'utf8');
    expect(report).toMatch(/status: applied/);
    expect(report).toMatch(/wt_users\.csv \(users, \d+ bytes, sha256 [0-9a-f]{16}…\): accepted, 25\/25 rows valid/);
    // Processed files left the customer's view for the archive.
    const ls = await sftp(server.sftpPort, key, 'demo', ['ls -1'], ws.dir);
    expect(ls.stdout).not.toMatch(/wt_users\.csv/);
    const users = ws.cli(['directory', 'users', '--tenant', 'demo', '--json']);
    expect(JSON.parse(users.stdout)).toHaveLength(25);
  }, 60_000);

  it('serves a tenant added while it runs', async () => {
    const pair = generateClientKeyPair(path.join(ws.dir, 'keys/tenants/late'));
    const add = ws.cli(['tenant', 'add', 'late', '--key', `${pair.privateKeyPath}.pub`]);
    expect(add.status, add.stderr).toBe(0);
    const put = await sftp(server.sftpPort, pair.privateKeyPath, 'late', ['put examples/wt_groups.csv'], ws.dir);
    expect(put.code, put.stderr).toBe(0);
    await waitFor(() => reportsOf(ws, 'late').length === 1, 20_000, "the new tenant's report");
    expect(JSON.parse(ws.cli(['directory', 'groups', '--tenant', 'late', '--json']).stdout)).toHaveLength(8);
  }, 60_000);

  it('picks up a file copied into the inbox by other means', async () => {
    const before = reportsOf(ws, 'demo').length;
    const inbox = path.join(ws.dir, 'data/tenants/demo/inbox');
    const body = fs.readFileSync(path.join(ws.dir, 'examples/wt_segments.csv'), 'utf8') + 'Norway;no\n';
    fs.writeFileSync(path.join(inbox, '.wt_segments.csv.tmp'), body);
    fs.renameSync(path.join(inbox, '.wt_segments.csv.tmp'), path.join(inbox, 'wt_segments.csv'));
    await waitFor(() => reportsOf(ws, 'demo').length === before + 1, 15_000, 'a report for the copied file');
    const segments = JSON.parse(ws.cli(['directory', 'segments', '--tenant', 'demo', '--json']).stdout);
    expect(segments.map((s: { externalId: string }) => s.externalId)).toContain('no');
    expect(fs.readdirSync(inbox)).toEqual([]);
  }, 60_000);

  it('exits 0 on SIGTERM', async () => {
    expect(await stop(server)).toBe(0);
    expect(server.stderr()).toMatch(/"msg":"stopped"/);
  }, 60_000);
});

describe('a tenant synced on a cron schedule', () => {
  it('receives uploads at once but reconciles only on its schedule', async () => {
    const ws = makeWorkspace();
    const pair = generateClientKeyPair(path.join(ws.dir, 'keys/tenants/acme'));
    // Every 2 seconds (node-cron takes a seconds field), Stockholm time.
    ws.tenant('acme', { keys: [pair.publicKeyLine], sync: { trigger: 'cron', cron: '*/2 * * * * *', timezone: 'Europe/Stockholm' } });
    const server = await startServe(ws);
    try {
      fs.cpSync(path.join(REPO, 'examples'), path.join(ws.dir, 'examples'), { recursive: true });
      const put = await sftp(server.sftpPort, pair.privateKeyPath, 'acme', ['put examples/wt_groups.csv'], ws.dir);
      expect(put.code, put.stderr).toBe(0);
      await waitFor(() => reportsOf(ws, 'acme').length === 1, 15_000, 'the scheduled run');
      const report = fs.readFileSync(path.join(ws.dir, 'data/tenants/acme/home/reports', reportsOf(ws, 'acme')[0]), 'utf8');
      expect(report).toMatch(/trigger: schedule/);
      expect(report).toMatch(/created 8/);
    } finally {
      expect(await stop(server)).toBe(0);
      ws.cleanup();
    }
  }, 60_000);
});

describe('a port that is already taken', () => {
  it.each(['SFTP', 'HTTP'])('%s: serve exits 1 with a one-line reason instead of running without a listener', async (what) => {
    const ws = makeWorkspace();
    const config = fs.readFileSync(ws.configPath, 'utf8') + 'sftp: { host: 127.0.0.1 }\nhttp: { host: 127.0.0.1 }\n';
    fs.writeFileSync(ws.configPath, config);
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const flag = what === 'SFTP' ? '--sftp-port' : '--http-port';
      const child = spawn(process.execPath, ['--import', TSX, CLI, '--config', ws.configPath, 'serve', flag, String(port)], {
        cwd: ws.dir, env: { ...process.env, WT_SYNC_SFTP_PORT: '0', WT_SYNC_HTTP_PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'],
      });
      let err = '';
      child.stderr!.on('data', (d) => (err += d));
      const code = await new Promise<number | null>((resolve) => {
        const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
        child.once('exit', (c) => {
          clearTimeout(t);
          resolve(c);
        });
      });
      expect(code).toBe(1);
      const lines = err.split('\n').filter((l) => l.startsWith('wt-sync:'));
      expect(lines).toEqual([`wt-sync: cannot listen for ${what} on 127.0.0.1:${port}: the port is already in use (EADDRINUSE)`]);
    } finally {
      taken.close();
      ws.cleanup();
    }
  }, 60_000);
});

describe('stopping with a settle window open', () => {
  it('reconciles the files accepted before exit instead of leaving them to the next start', async () => {
    const ws = makeWorkspace();
    fs.cpSync(path.join(REPO, 'examples'), path.join(ws.dir, 'examples'), { recursive: true });
    const server = await startServe(ws, ['--settle-seconds', '600']);
    try {
      const key = path.join(ws.dir, 'keys/tenants/demo/id_ed25519');
      const put = await sftp(server.sftpPort, key, 'demo', ['put examples/*.csv'], ws.dir);
      expect(put.code, put.stderr).toBe(0);
      await waitFor(() => fs.readdirSync(path.join(ws.dir, 'data/tenants/demo/inbox')).length === 0, 15_000, 'the files to be received');
      expect(reportsOf(ws, 'demo')).toEqual([]); // the settle window (10 minutes) is still open
      expect(await stop(server)).toBe(0);
      expect(reportsOf(ws, 'demo')).toHaveLength(1);
      expect(JSON.parse(ws.cli(['directory', 'users', '--tenant', 'demo', '--json']).stdout)).toHaveLength(25);
    } finally {
      await stop(server);
      ws.cleanup();
    }
  }, 60_000);
});
