// `wt-sync directory users|groups|segments --tenant T`: what the embedded WT directory holds now.
import type { Command } from 'commander';
import { readDirectory } from '../targets/embedded.js';
import { print, requireTenant, table, withApp, type GlobalOptions } from './common.js';
import { directoryView } from '../targets/directory-view.js';

export function register(program: Command): void {
  const dir = program.command('directory').description('show the WT directory (embedded target)');
  for (const kind of ['users', 'groups', 'segments'] as const) {
    dir
      .command(kind)
      .description(`list ${kind}`)
      .requiredOption('--tenant <id>', 'tenant id')
      .option('--removed', 'include users marked for removal (users only)')
      .option('--json', 'print as JSON')
      .action(async (opts: GlobalOptions & { tenant: string; removed?: boolean }, cmd: Command) => {
        const o = { ...cmd.optsWithGlobals(), ...opts } as GlobalOptions & { tenant: string; removed?: boolean };
        await withApp(o, async (app) => {
          const tenant = requireTenant(app, o.tenant);
          const view = directoryView(readDirectory(app.db, tenant.id));
          if (kind === 'users') {
            const users = view.users.filter((u) => o.removed || !u.removedAt);
            print(o, users, () => table(users, ['externalId', 'firstName', 'lastName', 'username', 'email', 'title', 'status', 'memberOf', 'adminOf', 'segments', 'removedAt']));
          } else if (kind === 'groups') {
            print(o, view.groups, () => table(view.groups, ['externalId', 'name', 'parentId']));
          } else {
            print(o, view.segments, () => table(view.segments, ['externalId', 'name']));
          }
        });
      });
  }
}
