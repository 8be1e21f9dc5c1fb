// npm run bench:sftp — upload throughput of the wt-sync SFTP server against a throwaway OpenSSH sshd
// (internal-sftp), same OpenSSH `sftp` client and cipher, on loopback. Prints medians and the ratio
// wt-sync/sshd; then the latency from the end of a put of examples/ to its report in /reports/ (settle 0) against
// a real `wt-sync serve`. The last line is one JSON object with the figures.
//
// Environment: BENCH_SFTP_MB (default 200), BENCH_SFTP_RUNS (default 5), BENCH_SFTP_CIPHER
// (default aes128-gcm@openssh.com).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { DEFAULT_PATTERNS, SEED_COLUMNS, SEED_HEADERS } from '../src/config/tenant-template.js';
import { ensureHostKey, generateClientKeyPair } from '../src/sftp/host-key.js';
import { startSftpServer, type CompletedUpload } from '../src/sftp/server.js';
import { freePort, waitForPort } from './lib/ports.js';

const SIZE_MB = Number(process.env.BENCH_SFTP_MB ?? 200);
const RUNS = Math.max(1, Number(process.env.BENCH_SFTP_RUNS ?? 5));
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

/**
 * Latency from the end of an OpenSSH `put` of the examples/ files to the report of the users file appearing in
 * /reports/, against a real `wt-sync serve` process with the settle window at 0. Each round changes one title in
 * the users file, so it is never a duplicate.
 */
async function runReportLatencyBench(rounds = 3): Promise<{ reportLatencyMs: number[]; reportLatencyMedianMs: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'wt-sync-bench-latency-'));
  const repo = join(import.meta.dirname, '..');
  const client = generateClientKeyPair(join(dir, 'client'));
  mkdirSync(join(dir, 'config/tenants'), { recursive: true });
  writeFileSync(join(dir, 'config/wt-sync.yaml'), `dataDir: ${join(dir, 'data')}\nkeysDir: ${join(dir, 'keys')}\ntenantsDir: ${join(dir, 'config/tenants')}\nlog: { level: warn }\n`);
  const headers = SEED_HEADERS;
  const tenant = { name: 'Bench', keys: [client.publicKeyLine], files: Object.fromEntries((['users', 'groups', 'segments'] as const).map((t) => [t, { pattern: DEFAULT_PATTERNS[t], columns: SEED_COLUMNS[t], header: headers[t] }])) };
  writeFileSync(join(dir, 'config/tenants/bench.yaml'), JSON.stringify(tenant));
  const serve = spawn(process.execPath, ['--import', 'tsx', join(repo, 'src/cli.ts'), '--config', join(dir, 'config/wt-sync.yaml'), 'serve', '--settle-seconds', '0'], {
    cwd: repo, env: { ...process.env, WT_SYNC_SFTP_PORT: '0', WT_SYNC_HTTP_PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    let out = '';
    serve.stdout!.on('data', (d) => (out += d));
    const started = Date.now();
    while (!/SFTP +\S+:(\d+)/.test(out)) {
      if (Date.now() - started > 60_000 || serve.exitCode !== null) throw new Error(`wt-sync serve did not start: ${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const port = Number(/SFTP +\S+:(\d+)/.exec(out)![1]);
    const reports = join(dir, 'data/tenants/bench/home/reports');
    const usersReports = () => (existsSync(reports) ? readdirSync(reports).filter((f) => f.endsWith('.json')) : [])
      .filter((f) => (JSON.parse(readFileSync(join(reports, f), 'utf8')) as { files: { name: string }[] }).files.some((x) => x.name === 'wt_users.csv')).length;
    const upload = join(dir, 'upload');
    mkdirSync(upload);
    const users = readFileSync(join(repo, 'examples/wt_users.csv'), 'utf8');
    for (const f of ['wt_groups.csv', 'wt_segments.csv']) writeFileSync(join(upload, f), readFileSync(join(repo, 'examples', f)));
    const latencies: number[] = [];
    for (let round = 0; round < rounds; round++) {
      writeFileSync(join(upload, 'wt_users.csv'), users.replace('Team Lead', `Team Lead ${round}`));
      const before = usersReports();
      const r = await sh('sftp', ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '-i', client.privateKeyPath, '-P', String(port), '-b', '-', 'bench@127.0.0.1'],
        `lcd ${upload}\nput wt_groups.csv\nput wt_segments.csv\nput wt_users.csv\n`);
      if (r.code !== 0) throw new Error(`sftp put failed: ${r.stderr}`);
      const putEnd = performance.now();
      while (usersReports() === before) {
        if (performance.now() - putEnd > 30_000) throw new Error('no report within 30 s');
        await new Promise((res) => setTimeout(res, 5));
      }
      latencies.push(performance.now() - putEnd);
      process.stdout.write(`report round ${round + 1}/${rounds}: ${Math.round(latencies[round])} ms after the put ended\n`);
    }
    return { reportLatencyMs: latencies.map((x) => Math.round(x)), reportLatencyMedianMs: Math.round(median(latencies)) };
  } finally {
    serve.kill('SIGTERM');
    await new Promise((r) => serve.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  process.stdout.write(`SFTP upload benchmark: ${SIZE_MB} MB put with OpenSSH sftp, cipher ${CIPHER}, ${RUNS} runs each (after one warm-up)\n`);
  const figures = await runSftpThroughputBench();
  process.stdout.write(`client: ${figures.client}\n`);
  process.stdout.write(`wt-sync: median ${figures.wtSyncMedianMBps} MB/s (${figures.wtSyncSeconds.join(', ')} s)\n`);
  process.stdout.write(`sshd (internal-sftp): median ${figures.sshdMedianMBps} MB/s (${figures.sshdSeconds.join(', ')} s)\n`);
  process.stdout.write(`ratio wt-sync/sshd: ${figures.ratio}×  (target ≥ 1.5×)\n`);
  const latency = await runReportLatencyBench();
  process.stdout.write(`report latency (examples/ put → users report in /reports/, settle 0): median ${latency.reportLatencyMedianMs} ms (${latency.reportLatencyMs.join(', ')} ms)\n`);
  process.stdout.write(JSON.stringify({ ...figures, ...latency }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`bench:sftp failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
