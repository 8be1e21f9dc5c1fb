// curl (libssh2) against the server.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, startFixture, waitFor, type Fixture } from './helpers.js';

describe('curl sftp://', () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await startFixture();
  });
  afterAll(async () => {
    await f.stop();
  });

  it('curl -V lists sftp', async () => {
    const r = await run('curl', ['-V']);
    expect(r.stdout).toMatch(/Protocols:.*\bsftp\b/);
  });

  it('uploads with --key --insecure, and with the pinned host key (--hostpubsha256)', async () => {
    const file = join(f.dir, 'segments.csv');
    const body = 'externalId;name\ns1;Stockholm\n';
    writeFileSync(file, body);
    const base = ['-sS', '--key', f.keys.a.privateKeyPath, '-u', 'a:'];
    const r1 = await run('curl', [...base, '--insecure', '-T', file, `sftp://127.0.0.1:${f.port}/`]);
    expect(r1.stderr).toBe('');
    expect(r1.code).toBe(0);
    const pin = f.hostFingerprint.replace(/^SHA256:/, '');
    const r2 = await run('curl', [...base, '--hostpubsha256', pin, '-T', file, `sftp://127.0.0.1:${f.port}/renamed.csv`]);
    expect(r2.stderr).toBe('');
    expect(r2.code).toBe(0);
    await waitFor(() => f.completed.length === 2);
    expect(f.completed.map((c) => c.name).sort()).toEqual(['renamed.csv', 'segments.csv']);
    for (const c of f.completed) expect(c.sha256).toBe(createHash('sha256').update(body).digest('hex'));

    // A wrong pin is refused by curl.
    const r3 = await run('curl', [...base, '--hostpubsha256', 'A'.repeat(43), '-T', file, `sftp://127.0.0.1:${f.port}/x.csv`]);
    expect(r3.code).not.toBe(0);
  });

  it('lists and downloads a report', async () => {
    mkdirSync(join(f.home('a'), 'reports'), { recursive: true });
    writeFileSync(join(f.home('a'), 'reports', 'r.txt'), 'hello report\n');
    const base = ['-sS', '--key', f.keys.a.privateKeyPath, '-u', 'a:', '--insecure'];
    const ls = await run('curl', [...base, `sftp://127.0.0.1:${f.port}/reports/`]);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/r\.txt/);
    const get = await run('curl', [...base, `sftp://127.0.0.1:${f.port}/reports/r.txt`]);
    expect(get.stdout).toBe('hello report\n');
  });
});
