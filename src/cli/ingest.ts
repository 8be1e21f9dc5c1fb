// `wt-sync ingest --tenant T FILE…`: as if uploaded, then reconcile; prints the report.
import type { Command } from 'commander';
import { reconcile, resumeUnfinished } from '../apply/run.js';
import { receiveFile, type ReceivedFile } from '../intake/receive.js';
import { describeProblem } from '../report/text.js';
import { EXIT, parseFileType, print, printReport, requireFiles, requireTenant, withApp, type GlobalOptions } from './common.js';

export function register(program: Command): void {
  program
    .command('ingest')
    .description('ingest files as if uploaded over SFTP, then reconcile the tenant and print the report')
    .requiredOption('--tenant <id>', 'tenant id')
    .argument('<files...>', 'CSV files')
    .option('--type <type>', 'read every file as users, groups or segments, whatever its name')
    .option('--json', 'print the report as JSON')
    .action(async (files: string[], opts: GlobalOptions & { tenant: string; type?: string }, cmd: Command) => {
      const o = { ...cmd.optsWithGlobals(), ...opts } as GlobalOptions & { tenant: string; type?: string };
      process.exitCode = await withApp(o, async (app) => {
        const tenant = requireTenant(app, o.tenant);
        const type = parseFileType(tenant, o.type);
        requireFiles(files);
        // Work a crash left unfinished comes first, so runs apply in arrival order.
        await resumeUnfinished(app, new Set([tenant.id]));
        const received: ReceivedFile[] = [];
        for (const file of files) received.push(await receiveFile(app, tenant, file, { onProgress: progressLine(file), type }));
        const report = await reconcile(app, tenant, { kind: 'ingest', fileIds: received.map((f) => f.id) }, undefined, { onApplyProgress: applyProgressLine() });
        if (!report) {
          print(o, { files: received, report: null }, () => received.map((f) => `${f.name}: ${f.status}\n${f.problems.map((p) => `  ${describeProblem(p)}\n`).join('')}`).join(''));
          return EXIT.ok;
        }
        printReport(o, report);
        return received.some((f) => f.status === 'rejected') || report.counts.failed > 0 ? EXIT.failed : EXIT.ok;
      });
    });
}

/** A progress line on a terminal for large files; nothing when output is piped. */
export function progressLine(file: string): ((bytes: number, size: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = 0;
  return (bytes, size) => {
    const now = Date.now();
    if (now - last < 200 && bytes < size) return;
    last = now;
    process.stderr.write(`\r${file}: ${Math.round((bytes / Math.max(size, 1)) * 100)}% (${(bytes / 1e6).toFixed(1)} of ${(size / 1e6).toFixed(1)} MB)${bytes >= size ? '\n' : ''}`);
  };
}

/** The apply's progress line on a terminal (operations applied of the plan's); nothing when output is piped. */
export function applyProgressLine(): ((done: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = 0;
  return (done, total) => {
    const now = Date.now();
    if (now - last < 200 && done < total) return;
    last = now;
    process.stderr.write(`\rapply: ${Math.round((done / Math.max(total, 1)) * 100)}% (${done} of ${total} operations)${done >= total ? '\n' : ''}`);
  };
}
