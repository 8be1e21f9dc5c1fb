// `wt-sync resume --tenant T`: lifts a SCIM target's quarantine, then finishes what is left: unfinished runs, and a
// run that plans again everything the quarantine kept back.
import type { Command } from 'commander';
import { reconcile, resumeUnfinished } from '../apply/run.js';
import { liftQuarantine, quarantineOf } from '../store/scim-mirror.js';
import { EXIT, print, printReport, requireTenant, withApp, type GlobalOptions } from './common.js';

export function register(program: Command): void {
  program
    .command('resume')
    .description("lift a tenant's target quarantine and apply what it kept back")
    .requiredOption('--tenant <id>', 'tenant id')
    .option('--json', 'print the report as JSON')
    .action(async (opts: GlobalOptions & { tenant: string }, cmd: Command) => {
      const o = { ...cmd.optsWithGlobals(), ...opts } as GlobalOptions & { tenant: string };
      process.exitCode = await withApp(o, async (app) => {
        const tenant = requireTenant(app, o.tenant);
        const was = quarantineOf(app.db, tenant.id);
        if (was && liftQuarantine(app.db, tenant.id)) app.logger.warn({ tenant: tenant.id, reason: was.reason, since: was.since }, 'quarantine lifted');
        process.stderr.write(was ? `quarantine of ${tenant.id} lifted (was: ${was.reason})\n` : `tenant ${tenant.id} was not quarantined\n`);
        await resumeUnfinished(app, new Set([tenant.id]));
        const report = await reconcile(app, tenant, { kind: 'resume', fileIds: [] });
        if (!report) {
          print(o, { report: null }, () => 'nothing left to apply\n');
        } else {
          printReport(o, report);
        }
        const again = quarantineOf(app.db, tenant.id);
        if (again) process.stderr.write(`wt-sync: ${tenant.id} is quarantined again: ${again.reason}\n`);
        return again || (report && report.counts.failed > 0) ? EXIT.failed : EXIT.ok;
      });
    });
}
