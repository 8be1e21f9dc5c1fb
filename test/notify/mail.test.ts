// Mailed reports and staleness against a real SMTP server on loopback: recipients, subject, body and attachment
// of each kind of run; a server refusing the first attempt (retried with backoff); a server that is down
// (the sync goes on); a stale tenant warned once per period and mailed once.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { reconcile } from '../../src/apply/run.js';
import { LOG_REDACT, openApp, type App } from '../../src/app.js';
import { receiveFile } from '../../src/intake/receive.js';
import { Mailer, mailSettings, type MailSettings } from '../../src/notify/mailer.js';
import { Notifier } from '../../src/notify/notifier.js';
import { loadTenants } from '../../src/config/load.js';
import { waitFor } from '../sftp/helpers.js';
import { makeWorkspace, REPO, type Workspace } from '../helpers/workspace.js';
import { startSmtp, type TestSmtp } from './smtp.js';

const EXAMPLES = path.join(REPO, 'examples');
const PASSWORD = 'smtp-secret-5ae1';

let ws: Workspace;
let smtp: TestSmtp;
let logs: string[];
let clock: Date;
let app: App;
let mailer: Mailer;
let notifier: Notifier;

function settings(port: number, over: Partial<MailSettings> = {}): MailSettings {
  return { host: '127.0.0.1', port, secure: false, requireTls: false, user: 'wt', password: PASSWORD, from: 'wt-sync <sync@wt.example>', attempts: 4, initialDelayMs: 50, ...over };
}

function open(mailPort: number, over: Partial<MailSettings> = {}) {
  const logger = pino({ level: 'debug', redact: { paths: LOG_REDACT, censor: '[redacted]' } }, { write: (s: string) => logs.push(s) });
  app = openApp({ configPath: ws.configPath, logger, now: () => clock });
  mailer = new Mailer(settings(mailPort, over), logger);
  notifier = new Notifier(app, { mailer, tenants: () => loadTenants(app.config.paths.tenantsDir), pollMs: 60_000, staleCheckMs: 60_000 });
  notifier.start();
}

async function ingest(files: [string, string | Buffer][]) {
  const tenant = app.tenant('acme');
  const ids: number[] = [];
  for (const [name, body] of files) ids.push((await receiveFile(app, tenant, ws.file(name, body))).id);
  return reconcile(app, tenant, { kind: 'ingest', fileIds: ids });
}

const examples = () => ['wt_groups.csv', 'wt_segments.csv', 'wt_users.csv'].map((f) => [f, fs.readFileSync(path.join(EXAMPLES, f))] as [string, Buffer]);
const logLines = (msg: RegExp) => logs.map((l) => JSON.parse(l)).filter((l) => msg.test(l.msg));

beforeEach(async () => {
  ws = makeWorkspace();
  ws.tenant('acme', { name: 'Acme AB', reports: { email: ['hr@acme.example', 'it@acme.example'] }, expect: { everyHours: 26 } });
  smtp = await startSmtp({ users: { wt: PASSWORD } });
  logs = [];
  clock = new Date('2026-03-02T06:00:00Z');
});
afterEach(async () => {
  notifier?.stop();
  await mailer?.close(1000);
  app?.close();
  await smtp.close();
  ws.cleanup();
});

describe('mailed reports', () => {
  it('mails an applied run to the recipients: counts in the subject and body, the text report attached', async () => {
    open(smtp.port);
    const report = (await ingest(examples()))!;
    notifier.poll();
    await mailer.idle();
    expect(smtp.mails).toHaveLength(1);
    const m = smtp.mails[0];
    expect(m.to).toEqual(['hr@acme.example', 'it@acme.example']);
    expect(m.from).toBe('sync@wt.example');
    expect(m.user).toBe('wt');
    expect(m.subject).toBe(`wt-sync Acme AB (acme): run ${report.runId} applied: 37 created, 0 updated, 0 removed`);
    expect(m.text).toContain('created 37, updated 0, removed 0, restored 0, purged 0');
    expect(m.text).toContain('wt_users.csv: accepted, 25 of 25 rows valid');
    expect(m.attachments).toHaveLength(1);
    expect(m.attachments[0].filename).toMatch(new RegExp(`^20260302T060000Z-run-${report.runId}\\.txt$`));
    const published = fs.readFileSync(path.join(ws.dir, 'data/tenants/acme/home/reports', m.attachments[0].filename), 'utf8');
    expect(m.attachments[0].content.replace(/\r\n/g, '\n')).toBe(published);
    // Polling again sends nothing new: each run is mailed once.
    notifier.poll();
    await mailer.idle();
    expect(smtp.mails).toHaveLength(1);
  });

  it('mails a rejected file with the reason, and a held run saying how to approve', async () => {
    open(smtp.port);
    await ingest(examples());
    const rejected = (await ingest([['wt_segments.csv', 'SegmentName,SegmentID\nx,y\n']]))!;
    const users = fs.readFileSync(path.join(EXAMPLES, 'wt_users.csv'), 'utf8').trimEnd().split('\n');
    const held = (await ingest([['wt_users.csv', users.slice(0, -5).join('\n') + '\n']]))!;
    notifier.poll();
    await mailer.idle();
    expect(smtp.mails.map((m) => m.subject)).toEqual([
      expect.stringMatching(/run 1 applied/),
      `wt-sync Acme AB (acme): run ${rejected.runId} rejected: 0 created, 0 updated, 0 removed, 1 file error`,
      `wt-sync Acme AB (acme): run ${held.runId} held for approval: 0 created, 0 updated, 0 removed, 5 held`,
    ]);
    expect(smtp.mails[1].text).toMatch(/No file of this run was accepted[\s\S]*wt_segments\.csv, line 1: the header is separated by ','/);
    expect(smtp.mails[2].text).toContain(`wt-sync approve --tenant acme ${held.runId}`);
    expect(smtp.mails[2].text).toContain(`POST /api/v1/tenants/acme/runs/${held.runId}/approve`);
    expect(smtp.mails[2].text).toMatch(/5 user removals wait for approval/);
  });

  it('tries again with backoff when the server refuses the first attempt', async () => {
    open(smtp.port);
    smtp.refuseNext(1);
    await ingest(examples());
    notifier.poll();
    await mailer.idle();
    expect(smtp.attempts).toBe(2);
    expect(smtp.mails).toHaveLength(1);
    const warn = logLines(/mail could not be sent; will try again/);
    expect(warn).toHaveLength(1);
    expect(warn[0]).toMatchObject({ level: 40, tenant: 'acme', attempt: 1, retryInMs: 50, err: expect.stringMatching(/451 try again later/) });
    expect(logLines(/mail sent/)[0]).toMatchObject({ attempt: 2 });
  });

  it('never blocks or fails the sync when the server is down: the run is applied and published, the failure logged', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    open(port, { attempts: 3, initialDelayMs: 20 });
    const report = (await ingest(examples()))!;
    notifier.poll();
    expect(report.status).toBe('applied');
    expect(fs.readdirSync(path.join(ws.dir, 'data/tenants/acme/home/reports')).filter((f) => f.endsWith('.txt'))).toHaveLength(1);
    await mailer.idle();
    expect(logLines(/will try again/)).toHaveLength(2);
    expect(logLines(/giving up/)).toEqual([expect.objectContaining({ level: 50, attempt: 3, err: expect.stringMatching(/ECONNREFUSED/) })]);
  });

  it('reads the settings from config and env, the password from env winning', () => {
    const s = mailSettings({ smtp: { host: 'mail.example', port: 25, secure: false, requireTls: true, user: 'u', password: 'from-file', from: 'x@y', attempts: 2, initialDelaySeconds: 1 } } as never, { WT_SYNC_SMTP_PASSWORD: 'from-env' });
    expect(s).toMatchObject({ host: 'mail.example', port: 25, requireTls: true, user: 'u', password: 'from-env', attempts: 2, initialDelayMs: 1000 });
    expect(mailSettings({} as never, {})).toBeNull();
    expect(mailSettings({} as never, { WT_SYNC_SMTP_HOST: 'h', WT_SYNC_SMTP_PORT: '465' })).toMatchObject({ host: 'h', port: 465, secure: true });
  });
});

describe('staleness', () => {
  it('warns once per period and mails once when no file came for longer than expect.everyHours', async () => {
    open(smtp.port);
    await ingest(examples()); // the last file: 2026-03-02T06:00Z
    notifier.poll();
    await mailer.idle();
    smtp.mails.length = 0;
    const tenant = app.tenant('acme');

    clock = new Date('2026-03-03T07:59:00Z'); // 25 h 59 min
    notifier.checkStaleness();
    expect(notifier.staleness(tenant)).toMatchObject({ stale: false, everyHours: 26 });
    expect(logLines(/is stale/)).toHaveLength(0);

    clock = new Date('2026-03-03T08:01:00Z');
    notifier.checkStaleness();
    notifier.checkStaleness();
    clock = new Date('2026-03-03T20:00:00Z');
    notifier.checkStaleness();
    await mailer.idle();
    expect(notifier.staleTenants()).toEqual(new Set(['acme']));
    expect(notifier.staleness(tenant)).toMatchObject({ stale: true, lastFileAt: '2026-03-02T06:00:00.000Z', staleSince: '2026-03-03T08:00:00.000Z' });
    expect(logLines(/is stale/)).toEqual([expect.objectContaining({ level: 40, tenant: 'acme', msg: 'tenant acme is stale: no file for more than 26 hours' })]);
    expect(smtp.mails).toHaveLength(1);
    expect(smtp.mails[0]).toMatchObject({ to: ['hr@acme.example', 'it@acme.example'], subject: 'wt-sync Acme AB (acme): no file for more than 26 hours' });
    expect(smtp.mails[0].text).toContain('the last file arrived 2026-03-02T06:00:00.000Z');

    // A second period still stale: one more warning, no second mail.
    clock = new Date('2026-03-04T10:00:00Z');
    notifier.checkStaleness();
    await mailer.idle();
    expect(logLines(/is stale/)).toHaveLength(2);
    expect(smtp.mails).toHaveLength(1);

    // A restart does not mail the same period again.
    notifier.stop();
    notifier = new Notifier(app, { mailer, tenants: () => loadTenants(app.config.paths.tenantsDir), pollMs: 60_000, staleCheckMs: 60_000 });
    notifier.start();
    await mailer.idle();
    expect(smtp.mails).toHaveLength(1);

    // A new file ends it.
    await ingest([['wt_segments.csv', fs.readFileSync(path.join(EXAMPLES, 'wt_segments.csv'), 'utf8').replace('\n', '\n\n')]]);
    notifier.checkStaleness();
    expect(notifier.staleTenants()).toEqual(new Set());
  });

  it('counts a tenant that never sent a file from when the service first watched it', async () => {
    open(smtp.port);
    const tenant = app.tenant('acme');
    expect(notifier.staleness(tenant)).toMatchObject({ stale: false, lastFileAt: null });
    clock = new Date('2026-03-03T08:01:00Z');
    notifier.checkStaleness();
    await mailer.idle();
    expect(notifier.staleness(tenant)).toMatchObject({ stale: true, staleSince: '2026-03-03T08:00:00.000Z' });
    expect(smtp.mails[0].text).toContain('no file has arrived yet');

    // `status` says so too (it reads when the service first watched the tenant from the same state).
    const status = ws.cli(['status', '--tenant', 'acme', '--json']);
    expect(JSON.parse(status.stdout)[0].staleness).toMatchObject({ stale: true, everyHours: 26, lastFileAt: null, staleSince: '2026-03-03T08:00:00.000Z' });
    expect(ws.cli(['status', '--tenant', 'acme']).stdout).toContain('  STALE: no file for more than 26 hours (no file yet)');
  });
});
