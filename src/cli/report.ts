// `wt-sync report --tenant T [RUN]`: a run's report (the latest when no run is given).
import type { Command } from 'commander';
import { getRun, latestRun } from '../store/runs.js';
import { EXIT, parseRunId, printReport, requireTenant, UsageError, withApp, type GlobalOptions } from './common.js';

export function register(program: Command): void {
  program
    .command('report')
    .description("print a run's reconciliation report (default: the tenant's latest run)")
    .requiredOption('--tenant <id>', 'tenant id')
    .argument('[run]', 'run id')
    .option('--json', 'print as JSON')
    .action(async (run: string | undefined, opts: GlobalOptions & { tenant: string }, cmd: Command) => {
      const o = { ...cmd.optsWithGlobals(), ...opts } as GlobalOptions & { tenant: string };
      process.exitCode = await withApp(o, async (app) => {
        const tenant = requireTenant(app, o.tenant);
        const row = run ? getRun(app.db, parseRunId(run)) : latestRun(app.db, tenant.id);
        if (!row || row.tenant !== tenant.id) throw new UsageError(run ? `run ${run} does not exist for tenant ${tenant.id}` : `tenant ${tenant.id} has no runs yet`);
        if (!row.report) throw new UsageError(`run ${row.id} has not finished yet`);
        printReport(o, row.report);
        return EXIT.ok;
      });
    });
}
