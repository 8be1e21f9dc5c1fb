// What ops see of a real `wt-sync serve`: readiness, the API with its token, metrics counting real SFTP logins,
// failures and uploads, the report mailed to a real SMTP server, a key added and removed while it runs, and a
// log in which none of the secrets it was given appear.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateClientKeyPair } from '../../src/sftp/host-key.js';
import { run, sshOptions, waitFor } from '../sftp/helpers.js';
import { startServe, type ServeProcess } from '../helpers/serve.js';
import { makeWorkspace, REPO, type Workspace } from '../helpers/workspace.js';
import { startSmtp, type TestSmtp } from '../notify/smtp.js';

const TOKEN = 'api-token-3c1d9a7e5f';
const SMTP_PASSWORD = 'smtp-pass-77b2e0';

let ws: Workspace;
let smtp: TestSmtp;
let server: ServeProcess;
let key: { privateKeyPath: string; publicKeyLine: string };
let base: string;

const sftp = (keyPath: string, lines: string[]) =>
  run('sftp', [...sshOptions(server.sftpPort, keyPath), '-P', String(server.sftpPort), '-b', '-', 'acme@127.0.0.1'], { input: lines.join('\n') + '\n', cwd: ws.dir });
const api = (url: string) => fetch(`${base}${url}`, { headers: { authorization: `Bearer ${TOKEN}` } });
const metric = (text: string, series: string) => Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);

beforeAll(async () => {
  ws = makeWorkspace();
  smtp = await startSmtp({ users: { 'wt-sync': SMTP_PASSWORD } });
  key = generateClientKeyPair(path.join(ws.dir, 'keys/tenants/acme'));
  ws.tenant('acme', { name: 'Acme AB', keys: [key.publicKeyLine], reports: { email: ['hr@acme.example'] } });
  const config = YAML.parse(fs.readFileSync(ws.configPath, 'utf8'));
  fs.writeFileSync(ws.configPath, YAML.stringify({ ...config, smtp: { host: '127.0.0.1', port: smtp.port, user: 'wt-sync', from: 'wt-sync@wt.example', initialDelaySeconds: 0.1 } }));
  fs.cpSync(path.join(REPO, 'examples'), path.join(ws.dir, 'examples'), { recursive: true });
  server = await startServe(ws, ['--settle-seconds', '1'], { WT_SYNC_API_TOKEN: TOKEN, WT_SYNC_SMTP_PASSWORD: SMTP_PASSWORD, WT_SYNC_LOG_LEVEL: 'debug' });
  base = `http://127.0.0.1:${server.httpPort}`;
}, 90_000);
afterAll(async () => {
  await server?.stop();
  await smtp?.close();
  ws?.cleanup();
});

describe('serve, operated', () => {
  it('is ready, says where the API is, and guards it', async () => {
    expect(server.stdout()).toContain('API /api/v1/ on (bearer token from WT_SYNC_API_TOKEN)');
    expect(server.stdout()).toMatch(/mail {2}reports via 127\.0\.0\.1:\d+/);
    const ready = await fetch(`${base}/readyz`);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { database: 'ok', sftp: 'ok', watcher: 'ok' } });
    expect((await fetch(`${base}/api/v1/tenants`)).status).toBe(401);
    expect((await api('/api/v1/tenants').then((r) => r.json()))[0]).toMatchObject({ id: 'acme', reportEmails: 1 });
  });

  it('counts a refused login, an upload and its run, and mails the report', async () => {
    const stranger = generateClientKeyPair(path.join(ws.dir, 'keys/stranger'));
    const refused = await sftp(stranger.privateKeyPath, ['ls']);
    expect(refused.code).not.toBe(0);
    const put = await sftp(key.privateKeyPath, ['put examples/*.csv']);
    expect(put.code, put.stderr).toBe(0);
    await waitFor(() => smtp.mails.length === 1, 20_000, 'the report mail');
    expect(smtp.mails[0]).toMatchObject({ to: ['hr@acme.example'], user: 'wt-sync', subject: expect.stringMatching(/^wt-sync Acme AB \(acme\): run 1 applied: 37 created/) });
    expect(smtp.mails[0].attachments[0].content).toMatch(/^wt-sync report — run 1, tenant acme/);

    const text = await (await fetch(`${base}/metrics`)).text();
    const sizes = ['wt_groups.csv', 'wt_segments.csv', 'wt_users.csv'].reduce((n, f) => n + fs.statSync(path.join(REPO, 'examples', f)).size, 0);
    expect(metric(text, 'wt_sync_uploads_total{tenant="acme"}')).toBe(3);
    expect(metric(text, 'wt_sync_upload_bytes_total{tenant="acme"}')).toBe(sizes);
    expect(metric(text, 'wt_sync_sftp_logins_total{tenant="acme"}')).toBe(1);
    expect(metric(text, 'wt_sync_sftp_auth_failures_total')).toBeGreaterThanOrEqual(1);
    expect(metric(text, 'wt_sync_sftp_bans_total')).toBe(0);
    const again = await (await fetch(`${base}/metrics`)).text();
    expect(metric(again, 'wt_sync_operations_total{tenant="acme",kind="created"}')).toBe(37);
    expect(metric(again, 'wt_sync_run_duration_seconds_count{tenant="acme"}')).toBe(1);
    expect(metric(again, 'wt_sync_files{tenant="acme",status="accepted"}')).toBe(3);
    expect(metric(again, 'wt_sync_runs{tenant="acme",status="applied"}')).toBe(1);

    const report = await api('/api/v1/tenants/acme/runs/1/report').then((r) => r.json());
    expect(report.counts.created).toBe(37);
  }, 60_000);

  it('uses a key added while it runs at the next login, and refuses a removed one', async () => {
    const second = generateClientKeyPair(path.join(ws.dir, 'keys/second'), 'second@acme');
    expect((await sftp(second.privateKeyPath, ['ls'])).code).not.toBe(0);
    const add = ws.cli(['key', 'add', '--tenant', 'acme', `${second.privateKeyPath}.pub`]);
    expect(add.status, add.stderr).toBe(0);
    const ls = await sftp(second.privateKeyPath, ['ls -1']);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/reports/);
    const fingerprint = /SHA256:\S+/.exec(add.stdout)![0];
    expect(ws.cli(['key', 'remove', '--tenant', 'acme', fingerprint]).status).toBe(0);
    expect((await sftp(second.privateKeyPath, ['ls'])).code).not.toBe(0);
  }, 60_000);

  it('stops on SIGTERM, and its whole log holds none of the secrets it was given', async () => {
    expect(await server.stop()).toBe(0);
    const log = server.stdout() + server.stderr();
    expect(log).toMatch(/"msg":"mail sent"/);
    expect(log).toMatch(/"event":"auth_failure"/);
    const privateKey = fs.readFileSync(key.privateKeyPath, 'utf8').split('\n').filter((l) => l && !l.startsWith('-----'));
    for (const secret of [TOKEN, SMTP_PASSWORD, ...privateKey]) expect(log).not.toContain(secret);
  }, 60_000);
});
