// `wt-sync tenant add|list|show`: set up and inspect tenants (config/tenants/<id>.yaml).
import type { Command } from 'commander';
import fs from 'node:fs';
import { loadConfig, loadTenant, loadTenants, tenantFile, writeTenant } from '../config/load.js';
import { TENANT_ID_PATTERN } from '../config/schema.js';
import { DEFAULT_PATTERNS, guessUserColumns, SEED_COLUMNS, SEED_HEADERS } from '../config/tenant-template.js';
import { FILE_TYPES } from '../model.js';
import { EXIT, print, table, UsageError, type GlobalOptions } from './common.js';
import { readKeyFile } from './key.js';

export function register(program: Command): void {
  const tenant = program.command('tenant').description('set up and inspect tenants');

  tenant
    .command('add')
    .description('create config/tenants/<id>.yaml with the seed column order, or a mapping guessed from a sample users file')
    .argument('<id>', 'tenant id (lower-case letters, digits, - and _); also the SFTP user name')
    .option('--name <name>', 'display name')
    .option('--key <file>', 'OpenSSH public key file (one or more key lines) allowed to upload')
    .option('--sample <usersCsv>', "a sample users file: its header is recorded and mapped by name")
    .option('--json', 'print the written tenant as JSON')
    .action((id: string, opts: GlobalOptions & { name?: string; key?: string; sample?: string }, cmd: Command) => {
      const o = { ...cmd.optsWithGlobals(), ...opts } as typeof opts;
      const { paths } = loadConfig(o.config);
      if (!TENANT_ID_PATTERN.test(id)) throw new UsageError(`tenant id "${id}" is invalid: use lower-case letters, digits, "-" and "_", starting with a letter or digit`);
      if (fs.existsSync(tenantFile(paths.tenantsDir, id))) throw new UsageError(`tenant "${id}" already exists: ${tenantFile(paths.tenantsDir, id)}`);
      const keys = o.key ? readKeyFile(o.key).map((k) => k.line) : [];
      const files = Object.fromEntries(FILE_TYPES.map((t) => [t, { pattern: DEFAULT_PATTERNS[t], columns: SEED_COLUMNS[t], header: SEED_HEADERS[t] }]));
      if (o.sample) {
        const header = readHeader(o.sample);
        const columns = guessUserColumns(header);
        const missing = ['externalId', 'firstName', 'lastName', 'username'].filter((f) => !columns.includes(f));
        if (missing.length) {
          throw new UsageError(`could not tell which columns of ${o.sample} hold ${missing.join(', ')} (header: ${header.join('; ')}); add the tenant without --sample and edit files.users.columns by hand`);
        }
        files.users = { pattern: DEFAULT_PATTERNS.users, columns, header };
      }
      const body = { name: o.name ?? id, keys, files };
      const file = writeTenant(paths.tenantsDir, id, body, ' Tenant file written by `wt-sync tenant add`. Columns map by position: never reorder them\n without also changing the customer\'s file. See README.md "Tenant configuration".');
      print(o, loadTenant(paths.tenantsDir, id), () => `wrote ${file}\n${o.sample ? `users columns guessed from ${o.sample}:\n${files.users.header.map((h, i) => `  ${i + 1}. ${h} → ${files.users.columns[i]}`).join('\n')}\n` : ''}`);
      process.exitCode = EXIT.ok;
    });

  tenant
    .command('list')
    .description('list tenants')
    .option('--json', 'print as JSON')
    .action((opts: GlobalOptions, cmd: Command) => {
      const o = { ...cmd.optsWithGlobals(), ...opts } as GlobalOptions;
      const tenants = loadTenants(loadConfig(o.config).paths.tenantsDir);
      const rows = tenants.map((t) => ({ id: t.id, name: t.name, keys: t.keys.length, types: FILE_TYPES.filter((f) => t.files[f]).join(','), sync: t.sync.trigger, target: t.target.type, source: t.source.type }));
      print(o, rows, () => (rows.length ? table(rows, ['id', 'name', 'keys', 'types', 'sync', 'target', 'source']) : 'no tenants\n'));
    });

  tenant
    .command('show')
    .description('show a tenant with every default filled in')
    .argument('<id>', 'tenant id')
    .option('--json', 'print as JSON')
    .action((id: string, opts: GlobalOptions, cmd: Command) => {
      const o = { ...cmd.optsWithGlobals(), ...opts } as GlobalOptions;
      const { paths } = loadConfig(o.config);
      if (!fs.existsSync(tenantFile(paths.tenantsDir, id))) throw new UsageError(`tenant "${id}" does not exist`);
      const t = loadTenant(paths.tenantsDir, id);
      print(o, t, () => JSON.stringify(t, null, 2) + '\n');
    });
}

/** The first line of a sample file, split on `;` (a BOM stripped; simple quotes removed). */
function readHeader(file: string): string[] {
  if (!fs.existsSync(file)) throw new UsageError(`sample file not found: ${file}`);
  const first = fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, '').split(/\r?\n/, 1)[0] ?? '';
  if (!first.includes(';')) throw new UsageError(`the sample's header "${first.slice(0, 80)}" is not separated by ';'; save the file as CSV with ';' as separator`);
  return first.split(';').map((h) => h.trim().replace(/^"(.*)"$/, '$1').replace(/""/g, '"'));
}
