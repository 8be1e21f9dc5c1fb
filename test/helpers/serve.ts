// A running `wt-sync serve` process (from the sources through tsx, or any command line, e.g. a built copy's
// `node dist/cli.js serve`): its ports read from what it prints, its output kept, stopped with SIGTERM.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { waitFor } from '../sftp/helpers.js';
import { CLI, TSX, type Workspace } from './workspace.js';

export interface ServeProcess {
  child: ChildProcess;
  sftpPort: number;
  httpPort: number;
  stdout: () => string;
  stderr: () => string;
  /** SIGTERM and the exit code. */
  stop(): Promise<number | null>;
}

export async function startProcess(cmd: string, args: string[], opts: SpawnOptions & { env: NodeJS.ProcessEnv }): Promise<ServeProcess> {
  const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  await waitFor(() => /HTTP +http/.test(out) || child.exitCode !== null, 60_000, 'serve to start');
  if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${err}`);
  return {
    child,
    sftpPort: Number(/SFTP +\S+:(\d+)/.exec(out)![1]),
    httpPort: Number(/http:\/\/[^:]+:(\d+)/.exec(out)![1]),
    stdout: () => out,
    stderr: () => err,
    stop() {
      if (child.exitCode !== null) return Promise.resolve(child.exitCode);
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** `wt-sync serve` from the sources against a workspace, on free ports. */
export function startServe(ws: Workspace, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
  return startProcess(process.execPath, ['--import', TSX, CLI, '--config', ws.configPath, 'serve', ...args], {
    cwd: ws.dir, env: { ...process.env, WT_SYNC_SFTP_PORT: '0', WT_SYNC_HTTP_PORT: '0', ...env },
  });
}
