// `wt-sync drift --tenant T [--json]`: where WT's SCIM directory differs from the mirror of what was applied.
// Exit 0: no drift; 1: drift (or the provider could not be read); 2: usage (not a SCIM tenant).
import type { Command } from 'commander';
import { readDirectory } from '../targets/embedded.js';
import { driftLines, scimDrift } from '../targets/scim-drift.js';
import { ScimTarget } from '../targets/scim.js';
import { EXIT, print, requireTenant, UsageError, withApp, type GlobalOptions } from './common.js';

export function register(program: Command): void {
  program
    .command('drift')
    .description("compare WT's SCIM directory with what was applied to it: missing, extra, field and membership differences")
    .requiredOption('--tenant <id>', 'tenant id')
    .option('--json', 'print as JSON')
    .action(async (opts: GlobalOptions & { tenant: string }, cmd: Command) => {
      const o = { ...cmd.optsWithGlobals(), ...opts } as GlobalOptions & { tenant: string };
      process.exitCode = await withApp(o, async (app) => {
        const tenant = requireTenant(app, o.tenant);
        const target = app.target(tenant);
        if (!(target instanceof ScimTarget)) throw new UsageError(`tenant "${tenant.id}" applies to the ${target.kind} directory, not a SCIM target: drift compares a remote directory with its mirror`);
        const drift = await scimDrift(target, tenant.id, readDirectory(app.db, tenant.id));
        print(o, drift, () => driftLines(drift));
        return drift.drift ? EXIT.failed : EXIT.ok;
      });
    });
}
