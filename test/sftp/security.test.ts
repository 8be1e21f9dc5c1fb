// Authentication, jail, refused requests, bans, limits, ssh-audit.
import { mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPEN, STATUS, connect, run, sftpBatch, sftpClient, sshOptions, startFixture, statusOf, waitFor, type Fixture } from './helpers.js';

const W = OPEN.WRITE | OPEN.CREAT | OPEN.TRUNC;

async function refused(p: Promise<ssh2.Client>): Promise<string> {
  try {
    const c = await p;
    c.end();
    return 'connected';
  } catch (e) {
    return (e as Error).message;
  }
}

describe('authentication', () => {
  let f: Fixture;
  beforeAll(async () => {
    const rsa2048 = ssh2.utils.generateKeyPairSync('rsa', { bits: 2048 });
    const rsa1024 = ssh2.utils.generateKeyPairSync('rsa', { bits: 1024 });
    f = await startFixture(undefined, { extraKeys: { rsa: [rsa2048.public], weak: [rsa1024.public] } });
    mkdirSync(join(f.dir, 'rsa'));
    writeFileSync(join(f.dir, 'rsa', 'id_rsa'), rsa2048.private, { mode: 0o600 });
    writeFileSync(join(f.dir, 'rsa', 'id_rsa_1024'), rsa1024.private, { mode: 0o600 });
  });
  afterAll(async () => {
    await f.stop();
  });

  it('refuses none, password and keyboard-interactive, offering publickey only', async () => {
    const methodsLeft: string[][] = [];
    const tryAuth = (authHandler: unknown) =>
      refused(
        connect(f.port, {
          username: 'a',
          authHandler: ((methods: string[] | null, _partial: boolean, next: (m: unknown) => void) => {
            if (methods) methodsLeft.push(methods);
            const list = authHandler as unknown[];
            const m = list.shift();
            next(m ?? false);
          }) as never,
        }),
      );
    expect(await tryAuth([{ type: 'none', username: 'a' }])).toMatch(/authentication methods failed/);
    expect(await tryAuth([{ type: 'password', username: 'a', password: 'secret' }])).toMatch(/authentication methods failed/);
    expect(
      await tryAuth([{ type: 'keyboard-interactive', username: 'a', prompt: (_n: string, _i: string, _l: string, _p: unknown, cb: (r: string[]) => void) => cb(['secret']) }]),
    ).toMatch(/authentication methods failed/);
    expect(methodsLeft.flat().every((m) => m === 'publickey')).toBe(true);
    const fails = f.events.filter((e) => e.event === 'auth_failure');
    expect(fails.map((e) => e.method)).toEqual(expect.arrayContaining(['password', 'keyboard-interactive']));
    expect(JSON.stringify(f.events)).not.toContain('secret'); // never log secrets
  });

  it('refuses an unknown key, a key of another tenant and an unknown tenant (logging the key fingerprint)', async () => {
    const stranger = readFileSync(f.keys.stranger.privateKeyPath);
    expect(await refused(connect(f.port, { username: 'a', privateKey: stranger }))).toMatch(/authentication methods failed/);
    expect(await refused(connect(f.port, { username: 'a', privateKey: readFileSync(f.keys.b.privateKeyPath) }))).toMatch(/authentication methods failed/);
    expect(await refused(connect(f.port, { username: 'nobody', privateKey: readFileSync(f.keys.a.privateKeyPath) }))).toMatch(/authentication methods failed/);
    expect(await refused(connect(f.port, { username: '../b', privateKey: readFileSync(f.keys.a.privateKeyPath) }))).toMatch(/authentication methods failed/);
    const reasons = f.events.filter((e) => e.event === 'auth_failure').map((e) => e.reason);
    expect(reasons).toContain('key not authorized for this tenant');
    expect(reasons).toContain('unknown tenant');
    const withFp = f.events.find((e) => e.event === 'auth_failure' && e.reason === 'key not authorized for this tenant');
    expect(withFp?.fingerprint).toMatch(/^SHA256:/);
    // OpenSSH with a wrong key
    const r = await run('sftp', [...sshOptions(f.port, f.keys.stranger.privateKeyPath), '-P', String(f.port), '-b', '-', 'a@127.0.0.1'], { input: 'ls\n' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Permission denied \(publickey\)/);
  });

  it('RSA: ≥2048 bits with rsa-sha2 works; SHA-1 ssh-rsa signatures and 1024-bit keys are refused', async () => {
    const key = join(f.dir, 'rsa', 'id_rsa');
    const ok = await run('sftp', [...sshOptions(f.port, key), '-P', String(f.port), '-b', '-', 'rsa@127.0.0.1'], { input: 'ls /\n' });
    expect(ok.code).toBe(0);
    const sha1 = await run(
      'sftp',
      [...sshOptions(f.port, key), '-o', 'PubkeyAcceptedAlgorithms=ssh-rsa', '-P', String(f.port), '-b', '-', 'rsa@127.0.0.1'],
      { input: 'ls /\n' },
    );
    expect(sha1.code).not.toBe(0);
    expect(f.events.some((e) => e.event === 'auth_failure' && /SHA-1/.test(String(e.reason)))).toBe(true);
    const weak = await run('sftp', [...sshOptions(f.port, join(f.dir, 'rsa', 'id_rsa_1024')), '-P', String(f.port), '-b', '-', 'weak@127.0.0.1'], {
      input: 'ls /\n',
    });
    expect(weak.code).not.toBe(0);
  });

  it('refuses exec, shell, pty and port forwarding', async () => {
    const base = [...sshOptions(f.port, f.keys.a.privateKeyPath), '-p', String(f.port)];
    const exec = await run('ssh', [...base, 'a@127.0.0.1', 'id'], { timeoutMs: 10_000 });
    expect(exec.code).not.toBe(0);
    expect(exec.stdout).not.toMatch(/uid=/);
    const shell = await run('ssh', [...base, '-tt', 'a@127.0.0.1'], { timeoutMs: 10_000 });
    expect(shell.code).not.toBe(0);
    const c = await connect(f.port, { username: 'a', privateKey: readFileSync(f.keys.a.privateKeyPath) });
    try {
      const fwd = await new Promise<string>((res) => c.forwardOut('127.0.0.1', 1, '127.0.0.1', 22, (err) => res(err ? err.message : 'opened')));
      expect(fwd).not.toBe('opened');
      const sub = await new Promise<string>((res) => c.subsys('other', (err) => res(err ? err.message : 'opened')));
      expect(sub).not.toBe('opened');
    } finally {
      c.end();
    }
    const refusedReqs = f.events.filter((e) => e.event === 'request_refused').map((e) => e.request);
    expect(refusedReqs).toEqual(expect.arrayContaining(['exec', 'shell', 'pty']));
    expect(f.events.find((e) => e.request === 'exec')?.command).toBe('id');
  });
});

describe('jail', () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await startFixture();
    // Tenant b exists on disk with a secret and a subfolder.
    mkdirSync(join(f.home('b'), 'deep'), { recursive: true });
    writeFileSync(join(f.home('b'), 'secret.csv'), 'b-secret');
    // Symlinks planted in a's home (by someone with host access) pointing into b.
    mkdirSync(f.home('a'), { recursive: true });
    symlinkSync(f.home('b'), join(f.home('a'), 'evil'));
    symlinkSync(join(f.home('b'), 'secret.csv'), join(f.home('a'), 'evil.csv'));
    symlinkSync('/etc', join(f.home('a'), 'etc'));
  });
  afterAll(async () => {
    await f.stop();
  });

  it('tenant a cannot list, read or write tenant b via .., /.., absolute host paths, symlinks or NUL bytes', async () => {
    const c = await sftpClient(f.port, 'a', readFileSync(f.keys.a.privateKeyPath));
    try {
      const hostB = f.home('b');
      const readPaths = [
        '../b/home/secret.csv',
        '/../b/home/secret.csv',
        '../../b/home/secret.csv',
        '/../../../..' + hostB + '/secret.csv',
        hostB + '/secret.csv',
        '/evil/secret.csv',
        '/evil.csv',
        '/etc/passwd',
        'secret.csv\u0000/../../b/home/secret.csv',
      ];
      for (const p of readPaths) {
        const st = await statusOf(c.open(p, 'r'));
        expect([STATUS.NO_SUCH_FILE, STATUS.PERMISSION_DENIED], p).toContain(st);
        expect([STATUS.NO_SUCH_FILE, STATUS.PERMISSION_DENIED], p).toContain(await statusOf(c.stat(p)));
      }
      for (const p of ['../b', '/../b/home', hostB, '/evil', '/evil/deep', '/etc']) {
        const st = await statusOf(c.readdir(p));
        expect([STATUS.NO_SUCH_FILE, STATUS.PERMISSION_DENIED], p).toContain(st);
      }
      for (const p of ['../b/home/w.csv', '/../b/home/w.csv', hostB + '/w.csv', '/evil/w.csv', '/evil.csv', '/etc/w.csv']) {
        const st = await statusOf(c.open(p, W));
        expect([STATUS.NO_SUCH_FILE, STATUS.PERMISSION_DENIED], p).toContain(st);
      }
      expect(await statusOf(c.unlink('/evil.csv'))).toBe(STATUS.PERMISSION_DENIED);
      expect(await statusOf(c.rename('/evil', '/mine'))).toBe(STATUS.PERMISSION_DENIED);
      expect(await statusOf(c.mkdir('/evil/newdir'))).toBe(STATUS.PERMISSION_DENIED);
      expect(await statusOf(c.setstat('/evil.csv', { size: 0 }))).toBe(STATUS.PERMISSION_DENIED);
      // Symlinks are not shown at all.
      expect((await c.readdir('/')).map((e) => e.filename).sort()).toEqual(['reports']);
      // `..` above the root stays in the root.
      expect(await c.realpath('/../b')).toBe('/b');
    } finally {
      c.end();
    }
    expect(readFileSync(join(f.home('b'), 'secret.csv'), 'utf8')).toBe('b-secret');
    expect(readdirSync(f.home('b')).sort()).toEqual(['deep', 'secret.csv']);
    expect(f.completed).toEqual([]);
    expect(f.events.some((e) => e.event === 'path_refused' && e.reason === 'symlink')).toBe(true);
  });

  it('OpenSSH: get/put through ../ and absolute paths fail', async () => {
    const work = join(f.dir, 'w');
    mkdirSync(work, { recursive: true });
    const r1 = await sftpBatch(f, 'a', [`get ../b/home/secret.csv`], { cwd: work });
    expect(r1.code).not.toBe(0);
    const r2 = await sftpBatch(f, 'a', [`get ${f.home('b')}/secret.csv`], { cwd: work });
    expect(r2.code).not.toBe(0);
    expect(readdirSync(work)).toEqual([]);
  });
});

describe('connections and limits', () => {
  it('a connection dropped mid-upload completes nothing', async () => {
    const f = await startFixture();
    try {
      const c = await sftpClient(f.port, 'a', readFileSync(f.keys.a.privateKeyPath));
      const h = await c.open('/cut.csv', W);
      await c.write(h, Buffer.alloc(100_000, 65), 0);
      c.conn.destroy();
      await waitFor(() => f.events.some((e) => e.event === 'disconnect'));
      await new Promise((r) => setTimeout(r, 100));
      expect(f.completed).toEqual([]);
      expect(readdirSync(f.inbox('a'))).toEqual([]);
      expect(readdirSync(f.partial('a'))).toEqual(['cut.csv']);
    } finally {
      await f.stop();
    }
  });

  it('repeated failures ban the address; the ban is logged and refuses even a good key', async () => {
    const f = await startFixture({ ban: { maxFailures: 3, windowMs: 60_000, banMs: 60_000 } });
    try {
      for (let i = 0; i < 3; i++) {
        await refused(connect(f.port, { username: 'a', password: 'nope' + i }));
      }
      await waitFor(() => f.events.some((e) => e.event === 'ban'));
      const good = await refused(connect(f.port, { username: 'a', privateKey: readFileSync(f.keys.a.privateKeyPath) }));
      expect(good).not.toBe('connected');
      expect(f.events.some((e) => e.event === 'connection_refused' && e.reason === 'banned')).toBe(true);
    } finally {
      await f.stop();
    }
  });

  it('pre-auth timeout, idle timeout, connections per address, sessions per tenant', async () => {
    const f = await startFixture({ preAuthTimeoutMs: 300, idleTimeoutMs: 400, maxConnectionsPerAddress: 3, maxSessionsPerTenant: 1 });
    try {
      // Pre-auth: a raw TCP client that never logs in is dropped.
      const sock = net.connect(f.port, '127.0.0.1').resume();
      const closedAt = await new Promise<number>((res) => sock.on('close', () => res(Date.now())).on('error', () => undefined));
      expect(closedAt).toBeGreaterThan(0);
      expect(f.events.some((e) => e.event === 'pre_auth_timeout')).toBe(true);

      // Sessions per tenant: the second SFTP session of tenant a is refused.
      const key = readFileSync(f.keys.a.privateKeyPath);
      const c1 = await sftpClient(f.port, 'a', key);
      const c1Closed = new Promise<void>((res) => c1.conn.on('close', () => res()));
      const second = await sftpClient(f.port, 'a', key).then(
        (c) => (c.end(), 'opened'),
        (e: Error) => e.message,
      );
      expect(second).not.toBe('opened');
      expect(f.events.some((e) => e.event === 'limit_sessions')).toBe(true);

      // Idle: c1 does nothing and is closed.
      await c1Closed;
      expect(f.events.some((e) => e.event === 'idle_timeout')).toBe(true);

      // Connections per address.
      const socks = [0, 1, 2, 3].map(() => net.connect(f.port, '127.0.0.1').resume().on('error', () => undefined));
      await waitFor(() => f.events.some((e) => e.event === 'connection_refused' && String(e.reason).includes('too many')), 3000);
      for (const s of socks) s.destroy();
    } finally {
      await f.stop();
    }
  });
});

describe('ssh-audit', () => {
  it('reports no failure', async () => {
    const f = await startFixture();
    try {
      const r = await run('ssh-audit', ['-n', '-p', String(f.port), '127.0.0.1'], { timeoutMs: 30_000 });
      // Exit codes of ssh-audit: 0 good, 2 warnings, 3 failures, 1 connection error.
      expect(r.stdout).toMatch(/ssh-ed25519/);
      expect(r.stdout).not.toMatch(/\[fail\]/);
      expect([0, 2]).toContain(r.code);
      expect(r.stdout).not.toMatch(/\(key\) (ssh-rsa|ecdsa|rsa-sha2)/);
      // Not in the host key's fingerprint line: its base64 is random and once read "…k4dMD5Yx…".
      const algorithms = r.stdout.split('\n').filter((l) => !l.startsWith('(fin)')).join('\n');
      expect(algorithms).toMatch(/\(kex\) curve25519-sha256/);
      expect(algorithms).not.toMatch(/sha1|md5|cbc|zlib/i);
    } finally {
      await f.stop();
    }
  });
});
