// Real OpenSSH `sftp -b` against the server.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sftpBatch, sshOptions, startFixture, waitFor, type Fixture } from './helpers.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('OpenSSH sftp client', () => {
  let f: Fixture;
  let work: string;
  beforeEach(async () => {
    f = await startFixture();
    work = join(f.dir, 'work');
    mkdirSync(work);
  });
  afterEach(async () => {
    await f.stop();
  });

  it('put, ls, get a report, rename a .filepart, rm, mkdir + put into a subfolder', async () => {
    const csv = Buffer.from('externalId;firstName;lastName;username\n1;Ada;Lovelace;ada\n');
    writeFileSync(join(work, 'wt_users.csv'), csv);
    mkdirSync(join(f.home('a'), 'reports'), { recursive: true });
    writeFileSync(join(f.home('a'), 'reports', 'run-1.txt'), 'report body\n');

    const r = await sftpBatch(
      f,
      'a',
      [
        'put wt_users.csv',
        'ls -l /',
        'ls /reports',
        'get /reports/run-1.txt got-report.txt',
        'put wt_users.csv /groups.csv.filepart',
        'ls /',
        'rename /groups.csv.filepart /groups.csv',
        'mkdir /sub',
        'put wt_users.csv /sub/x.csv',
        'rm /reports/run-1.txt',
        'ls -l /reports',
      ],
      { cwd: work },
    );
    expect(r.stderr).not.toMatch(/Failure|denied|No such/i);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('run-1.txt');
    expect(r.stdout).toMatch(/groups\.csv\.filepart/); // the temporary upload is listed until renamed
    expect(r.stdout).toMatch(/drwxr-xr-x\s+\d+\s+a\s+a\s+\d+ \w{3} [ \d]\d [\d:]{5} reports/);
    expect(readFileSync(join(work, 'got-report.txt'), 'utf8')).toBe('report body\n');
    expect(existsSync(join(f.home('a'), 'reports', 'run-1.txt'))).toBe(false);

    await waitFor(() => f.completed.length === 3, 5000, 'three completed uploads');
    const names = f.completed.map((c) => c.name).sort();
    expect(names).toEqual(['groups.csv', 'sub/x.csv', 'wt_users.csv']);
    for (const c of f.completed) {
      expect(c.tenantId).toBe('a');
      expect(c.size).toBe(csv.length);
      expect(c.sha256).toBe(sha(csv));
      expect(readFileSync(c.inboxPath)).toEqual(csv);
      expect(c.inboxPath.startsWith(f.inbox('a') + '/')).toBe(true);
      expect(c.inboxPath.endsWith('/' + c.name)).toBe(true);
    }
    // Completed files left the customer's view and nothing is left half-way.
    expect(readdirSync(f.partial('a'))).toEqual([]);
    expect(readdirSync(f.home('a')).sort()).toEqual(['reports', 'sub']);
    await waitFor(() => f.events.some((e) => e.event === 'disconnect'), 5000, 'disconnect event');
    const ev = f.events.map((e) => e.event);
    for (const e of ['connect', 'auth_success', 'open', 'close', 'rename', 'remove', 'upload_completed', 'disconnect']) expect(ev).toContain(e);
    const auth = f.events.find((e) => e.event === 'auth_success')!;
    expect(auth.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('the same name uploaded twice lands twice in the inbox, nothing overwritten', async () => {
    writeFileSync(join(work, 'u.csv'), 'one\n');
    expect((await sftpBatch(f, 'a', ['put u.csv'], { cwd: work })).code).toBe(0);
    writeFileSync(join(work, 'u.csv'), 'two\n');
    expect((await sftpBatch(f, 'a', ['put u.csv'], { cwd: work })).code).toBe(0);
    await waitFor(() => f.completed.length === 2);
    const [x, y] = f.completed;
    expect(x.inboxPath).not.toBe(y.inboxPath);
    expect(readFileSync(x.inboxPath, 'utf8')).toBe('one\n');
    expect(readFileSync(y.inboxPath, 'utf8')).toBe('two\n');
  });

  it('put -p (times preserved after the upload) does not fail', async () => {
    writeFileSync(join(work, 'p.csv'), 'x;y\n');
    const r = await sftpBatch(f, 'a', ['put -p p.csv', 'ls -l p.csv'], { cwd: work });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    await waitFor(() => f.completed.length === 1);
  });

  it('an upload cut off mid-way completes nothing; reput continues it and completes with the right sha256', async () => {
    const data = randomBytes(24 * 1024 * 1024);
    writeFileSync(join(work, 'big.csv'), data);
    // Throttled upload (-l 24000 Kbit/s ≈ 3 MB/s), killed after ~1.5 s.
    const child = spawn(
      'sftp',
      [...sshOptions(f.port, f.keys.a.privateKeyPath), '-P', String(f.port), '-l', '24000', '-b', '-', 'a@127.0.0.1'],
      { cwd: work, stdio: ['pipe', 'ignore', 'ignore'] },
    );
    child.stdin.end('put big.csv\n');
    const partialFile = join(f.partial('a'), 'big.csv');
    await waitFor(() => existsSync(partialFile) && statSync(partialFile).size > 1024 * 1024, 10_000, 'upload progress');
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    await waitFor(() => f.events.some((e) => e.event === 'disconnect'), 5000, 'disconnect');
    await new Promise((r) => setTimeout(r, 200));

    const cut = statSync(partialFile).size;
    expect(cut).toBeGreaterThan(0);
    expect(cut).toBeLessThan(data.length);
    expect(f.completed).toEqual([]);
    expect(readdirSync(f.inbox('a'))).toEqual([]);
    expect(f.events.some((e) => e.event === 'close' && e.outcome === 'interrupted')).toBe(true);

    const r = await sftpBatch(f, 'a', ['ls -l', 'reput big.csv'], { cwd: work });
    expect(r.stdout).toMatch(new RegExp(`\\s${cut}\\s.*big\\.csv`)); // the partial upload is visible with its size
    expect(r.code).toBe(0);
    await waitFor(() => f.completed.length === 1);
    const c = f.completed[0];
    expect(c.name).toBe('big.csv');
    expect(c.size).toBe(data.length);
    expect(c.sha256).toBe(sha(data));
    expect(sha(readFileSync(c.inboxPath))).toBe(sha(data));
    expect(f.events.some((e) => e.event === 'open' && e.resumeAt === cut)).toBe(true);
  });
});
