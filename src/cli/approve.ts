// `wt-sync approve --tenant T RUN`: apply the removals a held run kept back, re-checked against the latest snapshot.
import type { Command } from 'commander';
import { approveRun, RunError } from '../apply/run.js';
import { EXIT, parseRunId, printReport, requireTenant, UsageError, withApp, type GlobalOptions } from './common.js';

export function register(program: Command): void {
  program
    .command('approve')
    .description('approve the removals held back by a run (re-checked against the latest snapshot)')
    .requiredOption('--tenant <id>', 'tenant id')
    .argument('<run>', 'id of the held run')
    .option('--json', 'print the report as JSON')
    .action(async (run: string, opts: GlobalOptions & { tenant: string }, cmd: Command) => {
      const o = { ...cmd.optsWithGlobals(), ...opts } as GlobalOptions & { tenant: string };
      process.exitCode = await withApp(o, async (app) => {
        const tenant = requireTenant(app, o.tenant);
        try {
          const report = await approveRun(app, tenant, parseRunId(run));
          printReport(o, report);
          return report.counts.failed > 0 ? EXIT.failed : EXIT.ok;
        } catch (err) {
          if (err instanceof RunError) throw new UsageError(err.message);
          throw err;
        }
      });
    });
}
