// npm run bench:sftp — upload throughput of the wt-sync SFTP server against a throwaway OpenSSH sshd
// (internal-sftp), same OpenSSH `sftp` client and cipher, on loopback. Prints medians and the ratio
// wt-sync/sshd; the last line is one JSON object with the figures.
//
// Environment: BENCH_SFTP_MB (default 200), BENCH_SFTP_RUNS (default 3), BENCH_SFTP_CIPHER
// (default aes128-gcm@openssh.com).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ensureHostKey, generateClientKeyPair } from '../src/sftp/host-key.js';
import { startSftpServer, type CompletedUpload } from '../src/sftp/server.js';

const SIZE_MB = Number(process.env.BENCH_SFTP_MB ?? 200);
const RUNS = Math.max(1, Number(process.env.BENCH_SFTP_RUNS ?? 3));
const CIPHER = process.env.BENCH_SFTP_CIPHER ?? 'aes128-gcm@openssh.com';
const SIZE = SIZE_MB * 1000 * 1000;

function sh(cmd: string, args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string; seconds: number }> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr, seconds: Number(process.hrtime.bigint() - t0) / 1e9 }));
    child.stdin.end(input ?? '');
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`port ${port} did not open`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

export interface SftpThroughputFigures {
  sizeBytes: number;
  runs: number;
  cipher: string;
  client: string;
  wtSyncSeconds: number[];
  sshdSeconds: number[];
  wtSyncMedianMBps: number;
  sshdMedianMBps: number;
  ratio: number;
}

async function startSshd(dir: string, clientPub: string): Promise<{ port: number; proc: ChildProcess; uploadDir: string; user: string }> {
  const sdir = join(dir, 'sshd');
  mkdirSync(sdir, { recursive: true });
  const hostKey = join(sdir, 'ssh_host_ed25519_key');
  const kg = await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  if (kg.code !== 0) throw new Error(`ssh-keygen failed: ${kg.stderr}`);
  writeFileSync(join(sdir, 'authorized_keys'), clientPub + '\n', { mode: 0o600 });
  const uploadDir = join(sdir, 'upload');
  mkdirSync(uploadDir);
  const port = await freePort();
  const cfg = join(sdir, 'sshd_config');
  writeFileSync(
    cfg,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${join(sdir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(sdir, 'authorized_keys')}`,
      'StrictModes no',
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'Subsystem sftp internal-sftp',
      '',
    ].join('\n'),
  );
  if (!existsSync('/run/sshd')) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const proc = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr?.on('data', (d) => (err += d));
  proc.once('exit', (code) => {
    if (code) process.stderr.write(`sshd exited with ${code}: ${err}\n`);
  });
  await waitForPort(port);
  return { port, proc, uploadDir, user: userInfo().username };
}

export async function runSftpThroughputBench(): Promise<SftpThroughputFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'wt-bench-sftp-'));
  let sshd: ChildProcess | undefined;
  let server: Awaited<ReturnType<typeof startSftpServer>> | undefined;
  try {
    // Test data: incompressible.
    const file = join(dir, 'upload.bin');
    const fd = openSync(file, 'w');
    const chunk = 4 * 1000 * 1000;
    for (let written = 0; written < SIZE; written += chunk) writeSync(fd, randomBytes(Math.min(chunk, SIZE - written)));
    closeSync(fd);

    const client = generateClientKeyPair(join(dir, 'client'));
    const host = ensureHostKey(join(dir, 'keys'));
    const completed: CompletedUpload[] = [];
    server = await startSftpServer({
      host: '127.0.0.1',
      port: 0,
      hostKey: host.key,
      tenantsRoot: join(dir, 'tenants'),
      access: { authorizedKeys: (t) => (t === 'bench' ? [client.publicKeyLine] : undefined) },
      onUploadComplete: (u) => completed.push(u),
      logger: pino({ level: process.env.BENCH_SFTP_LOG ?? 'warn' }),
      limits: { maxFileBytes: SIZE * 2 },
    });
    const s = await startSshd(dir, client.publicKeyLine);
    sshd = s.proc;

    const version = (await sh('ssh', ['-V'])).stderr.trim();
    const opts = (port: number) => [
      '-o', 'StrictHostKeyChecking=no',
      '-o', 'UserKnownHostsFile=/dev/null',
      '-o', 'BatchMode=yes',
      '-o', 'LogLevel=ERROR',
      '-o', 'IdentitiesOnly=yes',
      '-o', 'Compression=no',
      '-c', CIPHER,
      '-i', client.privateKeyPath,
      '-P', String(port),
    ];
    const putWt = async () => {
      const r = await sh('sftp', [...opts(server!.port), '-b', '-', 'bench@127.0.0.1'], `put ${file} bench.bin\n`);
      if (r.code !== 0) throw new Error(`sftp to wt-sync failed: ${r.stderr}`);
      const u = completed.shift();
      if (!u || u.size !== SIZE) throw new Error('wt-sync upload did not complete');
      rmSync(u.inboxPath, { force: true });
      return r.seconds;
    };
    const putSshd = async () => {
      const r = await sh('sftp', [...opts(s.port), '-b', '-', `${s.user}@127.0.0.1`], `put ${file} ${join(s.uploadDir, 'bench.bin')}\n`);
      if (r.code !== 0) throw new Error(`sftp to sshd failed: ${r.stderr}`);
      rmSync(join(s.uploadDir, 'bench.bin'), { force: true });
      return r.seconds;
    };

    // Warm-up (page cache, first handshake), then alternate runs.
    await putWt();
    await putSshd();
    const wt: number[] = [];
    const ssh: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      wt.push(await putWt());
      ssh.push(await putSshd());
      process.stdout.write(`run ${i + 1}/${RUNS}: wt-sync ${wt[i].toFixed(2)} s, sshd ${ssh[i].toFixed(2)} s\n`);
    }
    const wtMBps = SIZE / 1e6 / median(wt);
    const sshMBps = SIZE / 1e6 / median(ssh);
    return {
      sizeBytes: SIZE,
      runs: RUNS,
      cipher: CIPHER,
      client: version,
      wtSyncSeconds: wt.map((x) => round(x, 3)),
      sshdSeconds: ssh.map((x) => round(x, 3)),
      wtSyncMedianMBps: round(wtMBps),
      sshdMedianMBps: round(sshMBps),
      ratio: round(wtMBps / sshMBps, 2),
    };
  } finally {
    sshd?.kill('SIGTERM');
    await server?.close(1000);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  process.stdout.write(`SFTP upload benchmark: ${SIZE_MB} MB put with OpenSSH sftp, cipher ${CIPHER}, ${RUNS} runs each (after one warm-up)\n`);
  const figures = await runSftpThroughputBench();
  process.stdout.write(`client: ${figures.client}\n`);
  process.stdout.write(`wt-sync: median ${figures.wtSyncMedianMBps} MB/s (${figures.wtSyncSeconds.join(', ')} s)\n`);
  process.stdout.write(`sshd (internal-sftp): median ${figures.sshdMedianMBps} MB/s (${figures.sshdSeconds.join(', ')} s)\n`);
  process.stdout.write(`ratio wt-sync/sshd: ${figures.ratio}×\n`);
  process.stdout.write(JSON.stringify(figures) + '\n');
}

main().catch((e) => {
  process.stderr.write(`bench:sftp failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
