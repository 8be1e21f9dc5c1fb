// `wt-sync status [--tenant T]`: per tenant, the latest files and runs, and any run waiting for approval.
import type { Command } from 'commander';
import { loadTenants } from '../config/load.js';
import { listFiles } from '../store/files.js';
import { listRuns } from '../store/runs.js';
import { quarantineOf } from '../store/scim-mirror.js';
import { print, requireTenant, table, withApp, type GlobalOptions } from './common.js';

export function register(program: Command): void {
  program
    .command('status')
    .description('show the latest files and runs per tenant, and runs held for approval')
    .option('--tenant <id>', 'only this tenant')
    .option('--json', 'print as JSON')
    .action(async (opts: GlobalOptions & { tenant?: string }, cmd: Command) => {
      const o = { ...cmd.optsWithGlobals(), ...opts } as GlobalOptions & { tenant?: string };
      await withApp(o, async (app) => {
        const tenants = o.tenant ? [requireTenant(app, o.tenant)] : loadTenants(app.config.paths.tenantsDir);
        const data = tenants.map((t) => {
          const runs = listRuns(app.db, t.id, 10);
          return {
            tenant: t.id,
            name: t.name,
            files: listFiles(app.db, t.id, 10).map(({ problems, ...f }) => ({ ...f, problems: problems.length })),
            runs,
            heldRuns: runs.filter((r) => r.status === 'held').map((r) => r.id),
            target: t.target.type,
            quarantine: t.target.type === 'scim' ? quarantineOf(app.db, t.id) : null,
          };
        });
        print(o, data, () =>
          data.map((t) => [
            `tenant ${t.tenant} (${t.name})`,
            ...(t.quarantine ? [`  QUARANTINED since ${t.quarantine.since}: ${t.quarantine.reason}\n  nothing is sent to the ${t.target} target until: wt-sync resume --tenant ${t.tenant}`] : []),
            t.heldRuns.length ? `  HELD: run ${t.heldRuns.join(', ')} waits for approval: wt-sync approve --tenant ${t.tenant} ${t.heldRuns[0]}` : '  nothing held',
            '  files:', indent(t.files.length ? table(t.files, ['id', 'name', 'type', 'status', 'validRows', 'dataRows', 'receivedAt', 'runId']) : '(none)\n'),
            '  runs:', indent(t.runs.length ? table(t.runs.map((r) => ({ ...r, trigger: r.trigger.kind })), ['id', 'status', 'trigger', 'createdAt', 'finishedAt']) : '(none)\n'),
          ].join('\n')).join('\n') + (data.length ? '' : 'no tenants\n'));
      });
    });
}

function indent(s: string): string {
  return s.split('\n').map((l) => (l ? `    ${l}` : l)).join('\n');
}
