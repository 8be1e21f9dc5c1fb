// sftp-pull against a real OpenSSH sshd started here on a loopback port, and against wt-sync's own SFTP server:
// ingested and reconciled, the pinned host key, keep/delete/move, unchanged files not fetched twice, a transfer
// cut mid-way never ingested, and the key passphrase nowhere in logs or files.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { pullNow } from '../../src/cli/pull.js';
import { seedTenant, REPO } from '../helpers/workspace.js';
import { startFixture, type Fixture } from '../sftp/helpers.js';
import { listDirectoryUsers } from './directory.js';
import { sourceWorkspace, type SourceWorkspace } from './helpers.js';
import { startProxy, startSshd, type Sshd } from './sshd.js';

const PASSPHRASE = 'pull-key-passphrase-4d2b8e';
const ENV = { ACME_PULL_PASSPHRASE: PASSPHRASE };
const EXAMPLES = ['wt_users.csv', 'wt_groups.csv', 'wt_segments.csv'];

let sshd: Sshd;
let sshdDir: string;
let ws: SourceWorkspace;
let outbox: string;

beforeAll(async () => {
  const tmp = sourceWorkspace();
  sshdDir = tmp.dir;
  sshd = await startSshd(path.join(sshdDir, 'sshd'), PASSPHRASE);
});
afterAll(async () => {
  await sshd.stop();
  fs.rmSync(sshdDir, { recursive: true, force: true });
});
beforeEach(() => {
  ws = sourceWorkspace();
  outbox = path.join(ws.dir, 'customer-outbox');
  fs.mkdirSync(outbox);
  for (const f of EXAMPLES) fs.copyFileSync(path.join(REPO, 'examples', f), path.join(outbox, f));
});
afterEach(() => {
  expect(ws.logs.join('').includes(PASSPHRASE)).toBe(false);
  expect(ws.filesContaining(PASSPHRASE)).toEqual([]);
  ws.cleanup();
});

function pullTenant(o: Record<string, unknown> = {}) {
  return seedTenant({
    source: {
      type: 'sftp-pull', host: '127.0.0.1', port: sshd.port, username: sshd.user, privateKeyPath: sshd.clientKey,
      passphrase: '${env:ACME_PULL_PASSPHRASE}', hostKeySha256: sshd.fingerprint, remoteDir: outbox,
      retry: { maxAttempts: 1, baseDelayMs: 10, maxDelayMs: 10 }, ...o,
    },
  });
}

describe('sftp-pull from OpenSSH sshd', () => {
  it('keep: files ingested and reconciled; unchanged files not fetched twice; a changed file fetched again', async () => {
    ws.writeTenant('acme', pullTenant());
    const app = ws.app();
    const first = await pullNow(app, app.tenant('acme'), ENV);
    expect(first.outcome.record.status, first.outcome.record.error).toBe('ok');
    expect(first.received.map((f) => [f.name, f.status]).sort()).toEqual(EXAMPLES.map((n) => [n, 'accepted']).sort());
    expect(first.report!.status).toBe('applied');
    expect(listDirectoryUsers(app, 'acme')).toHaveLength(25);
    expect(fs.readdirSync(outbox).sort()).toEqual([...EXAMPLES].sort()); // kept
    // Nothing new: nothing downloaded, nothing received.
    const second = await pullNow(app, app.tenant('acme'), ENV);
    expect(second.received).toEqual([]);
    expect(second.outcome.record.summary).toMatchObject({ files: 0, unchanged: 3 });
    // Touched but identical (mtime changes, bytes do not): still not handed over.
    const users = path.join(outbox, 'wt_users.csv');
    fs.utimesSync(users, new Date(), new Date(Date.now() + 5000));
    expect((await pullNow(app, app.tenant('acme'), ENV)).received).toEqual([]);
    // Changed: only that file comes again.
    fs.writeFileSync(users, fs.readFileSync(users, 'utf8').replace(';Mark;', ';Marcus;'));
    fs.utimesSync(users, new Date(), new Date(Date.now() + 10_000));
    const third = await pullNow(app, app.tenant('acme'), ENV);
    expect(third.received.map((f) => f.name)).toEqual(['wt_users.csv']);
    expect(ws.logs.join('')).toContain('sftp_pull_file');
  });

  it('delete and move after the pull', async () => {
    ws.writeTenant('acme', pullTenant({ afterPull: 'delete' }));
    let app = ws.app();
    expect((await pullNow(app, app.tenant('acme'), ENV)).received).toHaveLength(3);
    expect(fs.readdirSync(outbox)).toEqual([]);

    for (const f of EXAMPLES) fs.copyFileSync(path.join(REPO, 'examples', f), path.join(outbox, f));
    const done = path.join(ws.dir, 'customer-done');
    fs.mkdirSync(done);
    ws.writeTenant('acme', pullTenant({ afterPull: 'move', moveTo: done }));
    app = ws.app();
    const moved = await pullNow(app, app.tenant('acme'), ENV);
    // The same bytes again: received as duplicates, and moved all the same.
    expect(moved.received.map((f) => f.status)).toEqual(['duplicate', 'duplicate', 'duplicate']);
    expect(fs.readdirSync(outbox)).toEqual([]);
    expect(fs.readdirSync(done).sort()).toEqual([...EXAMPLES].sort());
  });

  it('a wrong pinned fingerprint is refused, naming the fingerprint offered; nothing is fetched', async () => {
    const wrong = 'SHA256:' + 'A'.repeat(43);
    ws.writeTenant('acme', pullTenant({ hostKeySha256: wrong }));
    const app = ws.app();
    const { outcome, received } = await pullNow(app, app.tenant('acme'), ENV);
    expect(outcome.record.status).toBe('failed');
    expect(outcome.record.error).toContain(`offered host key ${sshd.fingerprint}, not the pinned ${wrong}`);
    expect(outcome.report!.status).toBe('fetch-failed');
    expect(received).toEqual([]);
    expect(fs.readdirSync(outbox)).toHaveLength(3);
  });

  it('a missing pin is a configuration error naming the file and the key', () => {
    const t = pullTenant();
    delete (t.source as Record<string, unknown>).hostKeySha256;
    ws.writeTenant('acme', t);
    const r = ws.cli(['pull', '--tenant', 'acme']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${path.join(ws.dir, 'config/tenants/acme.yaml')}: source.hostKeySha256: is required: pin the server's host key`);
  });

  it('afterPull: move without moveTo is a configuration error', () => {
    ws.writeTenant('acme', pullTenant({ afterPull: 'move' }));
    const r = ws.cli(['status', '--tenant', 'acme']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('source.moveTo: is required with afterPull: move');
  });

  it('a transfer cut mid-way is never ingested, and the next pull fetches the file whole', async () => {
    // A users file large enough that the cut lands inside its transfer.
    const big = fs.readFileSync(path.join(REPO, 'examples/wt_users.csv'), 'utf8');
    const [header, ...rows] = big.trimEnd().split('\n');
    const many = [header, ...Array.from({ length: 4000 }, (_, i) => rows[i % rows.length].replace(/^[^;]*/, `bulk-${i}`).replace(/;[^;]*@/, `;u${i}@`))].join('\n') + '\n';
    fs.rmSync(path.join(outbox, 'wt_groups.csv'));
    fs.rmSync(path.join(outbox, 'wt_segments.csv'));
    fs.writeFileSync(path.join(outbox, 'wt_users.csv'), many);
    const proxy = await startProxy(sshd.port, 64 * 1024);
    try {
      ws.writeTenant('acme', pullTenant({ port: proxy.port }));
      const app = ws.app();
      const cut = await pullNow(app, app.tenant('acme'), ENV);
      expect(cut.outcome.record.status).toBe('failed');
      expect(cut.outcome.record.error).toMatch(/wt_users.csv: (the connection closed during the transfer|\d+ of \d+ bytes arrived)/);
      expect(cut.received).toEqual([]);
      expect(app.db.prepare('SELECT count(*) FROM files').pluck().get()).toBe(0);
      expect(fs.readdirSync(path.join(ws.dir, 'data/tenants/acme/partial'))).toEqual([]);
      expect(fs.readdirSync(path.join(ws.dir, 'data/tenants/acme/inbox'))).toEqual([]);
    } finally {
      await proxy.close();
    }
    ws.writeTenant('acme', pullTenant());
    const app = ws.app();
    const whole = await pullNow(app, app.tenant('acme'), ENV);
    expect(whole.received.map((f) => f.name)).toEqual(['wt_users.csv']);
    expect(whole.received[0].size).toBe(Buffer.byteLength(many));
  }, 30_000);

  it('pull --dry-run downloads and validates, and changes nothing here or on the server', async () => {
    ws.writeTenant('acme', pullTenant({ afterPull: 'delete' }));
    const r = await ws.cliAsync(['pull', '--tenant', 'acme', '--dry-run', '--json'], ENV);
    expect(r.status, r.stderr).toBe(0);
    const dry = JSON.parse(r.stdout);
    expect(dry.status).toBe('check: would apply');
    expect(dry.operations.filter((o: { op: string; entity: string }) => o.op === 'create' && o.entity === 'user')).toHaveLength(25);
    expect(fs.readdirSync(outbox)).toHaveLength(3);
    const app = ws.app();
    expect(listDirectoryUsers(app, 'acme')).toEqual([]);
    expect((await pullNow(app, app.tenant('acme'), ENV)).received).toHaveLength(3); // still new
  });
});

describe("sftp-pull from wt-sync's own SFTP server", () => {
  let fixture: Fixture;
  beforeEach(async () => {
    fixture = await startFixture();
  });
  afterEach(async () => {
    await fixture.stop();
  });

  it('files ingested and reconciled, then deleted through the server', async () => {
    const remote = path.join(fixture.home('a'), 'outbox');
    fs.mkdirSync(remote, { recursive: true });
    for (const f of EXAMPLES) fs.copyFileSync(path.join(REPO, 'examples', f), path.join(remote, f));
    ws.writeTenant('acme', seedTenant({
      source: {
        type: 'sftp-pull', host: '127.0.0.1', port: fixture.port, username: 'a', privateKeyPath: fixture.keys.a.privateKeyPath,
        hostKeySha256: fixture.hostFingerprint, remoteDir: '/outbox', afterPull: 'delete', retry: { maxAttempts: 1 },
      },
    }));
    const app = ws.app();
    const { outcome, received, report } = await pullNow(app, app.tenant('acme'), {});
    expect(outcome.record.status, outcome.record.error).toBe('ok');
    expect(received.map((f) => f.status)).toEqual(['accepted', 'accepted', 'accepted']);
    expect(report!.counts.created).toBeGreaterThan(25);
    expect(listDirectoryUsers(app, 'acme')).toHaveLength(25);
    expect(fs.readdirSync(remote)).toEqual([]);
  });
});
