// A throwaway OpenSSH sshd on a loopback port with its own config, host key and authorized key (as bench/sftp.ts
// starts one), and a TCP proxy that can cut a connection after a number of bytes (a transfer cut mid-way).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { userInfo } from 'node:os';
import path from 'node:path';
import { freePort, waitForPort } from '../../bench/lib/ports.js';

export interface Sshd {
  port: number;
  user: string;
  /** "SHA256:…" of its host key, as `ssh-keygen -lf` prints it. */
  fingerprint: string;
  /** A client key pair (with a passphrase) the server accepts. */
  clientKey: string;
  passphrase: string;
  stop(): Promise<void>;
}

function keygen(args: string[]): string {
  const r = spawnSync('ssh-keygen', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ssh-keygen ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

export async function startSshd(dir: string, passphrase: string): Promise<Sshd> {
  fs.mkdirSync(dir, { recursive: true });
  const hostKey = path.join(dir, 'ssh_host_ed25519_key');
  keygen(['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  const fingerprint = keygen(['-lf', `${hostKey}.pub`]).split(' ')[1];
  const clientKey = path.join(dir, 'client_ed25519');
  keygen(['-q', '-t', 'ed25519', '-N', passphrase, '-f', clientKey]);
  fs.writeFileSync(path.join(dir, 'authorized_keys'), fs.readFileSync(`${clientKey}.pub`), { mode: 0o600 });
  const port = await freePort();
  const cfg = path.join(dir, 'sshd_config');
  fs.writeFileSync(cfg, [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${hostKey}`, `PidFile ${path.join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`, 'StrictModes no', 'UsePAM no', 'PasswordAuthentication no',
    'KbdInteractiveAuthentication no', 'PermitRootLogin prohibit-password', 'Subsystem sftp internal-sftp', '',
  ].join('\n'));
  if (!fs.existsSync('/run/sshd')) fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const proc: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr?.resume();
  await waitForPort(port);
  return {
    port, user: userInfo().username, fingerprint, clientKey, passphrase,
    stop: () => new Promise<void>((resolve) => {
      if (proc.exitCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
    }),
  };
}

/** Forwards 127.0.0.1:<port> to `target`; with `cutAfterBytes`, drops every connection once that many bytes came back. */
export async function startProxy(target: number, cutAfterBytes: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    sockets.add(client).add(upstream);
    let down = 0;
    client.on('data', (c) => upstream.write(c));
    upstream.on('data', (c) => {
      down += c.length;
      if (down > cutAfterBytes) {
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(c);
    });
    const end = () => { client.destroy(); upstream.destroy(); };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}
