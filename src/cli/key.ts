// `wt-sync key add|list|remove --tenant T`: the customer's SFTP public keys in its tenant file. The file is edited
// in place (comments kept) and replaced atomically; a running server reads it again at the next login.
import type { Command } from 'commander';
import fs from 'node:fs';
import { ConfigError, loadConfig } from '../config/load.js';
import { KeyRefused, readPublicKeyLines } from '../keys/public-key.js';
import { addTenantKeys, listTenantKeys, removeTenantKey } from '../keys/tenant-keys.js';
import { EXIT, print, table, UsageError, type GlobalOptions } from './common.js';

type KeyOptions = GlobalOptions & { tenant: string };

function tenantsDirOf(o: GlobalOptions): string {
  return loadConfig(o.config).paths.tenantsDir;
}

/** A missing tenant is a usage mistake (exit 2), like everywhere else. */
function usage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof KeyRefused || (err instanceof ConfigError && /does not exist/.test(err.message))) throw new UsageError(err.message);
    throw err;
  }
}

/** Reads a public key file; every line is checked as the SFTP server would at login, the reason said. */
export function readKeyFile(file: string) {
  if (!fs.existsSync(file)) throw new UsageError(`key file not found: ${file}`);
  if (!fs.statSync(file).isFile()) throw new UsageError(`not a file: ${file}`);
  return usage(() => readPublicKeyLines(fs.readFileSync(file, 'utf8'), file));
}

export function register(program: Command): void {
  const key = program.command('key').description("manage a tenant's SFTP public keys");

  key
    .command('add')
    .description('allow an OpenSSH public key (.pub file, one or more lines) to log in as the tenant')
    .requiredOption('--tenant <id>', 'tenant id')
    .argument('<pubkeyFile>', 'OpenSSH public key file')
    .option('--json', 'print the added keys as JSON')
    .action((file: string, opts: KeyOptions, cmd: Command) => {
      const o = { ...cmd.optsWithGlobals(), ...opts } as KeyOptions;
      const keys = readKeyFile(file);
      const added = usage(() => addTenantKeys(tenantsDirOf(o), o.tenant, keys, new Date()));
      const skipped = keys.filter((k) => !added.includes(k));
      print(o, { added, alreadyPresent: skipped }, () => [
        ...added.map((k) => `added ${k.type} ${k.fingerprint}${k.comment ? ` (${k.comment})` : ''} to tenant ${o.tenant}\n`),
        ...skipped.map((k) => `already present: ${k.type} ${k.fingerprint}; nothing changed\n`),
      ].join(''));
      process.exitCode = EXIT.ok;
    });

  key
    .command('list')
    .description("list the tenant's keys: type, SHA256 fingerprint, comment, when added")
    .requiredOption('--tenant <id>', 'tenant id')
    .option('--json', 'print as JSON')
    .action((opts: KeyOptions, cmd: Command) => {
      const o = { ...cmd.optsWithGlobals(), ...opts } as KeyOptions;
      const keys = usage(() => listTenantKeys(tenantsDirOf(o), o.tenant));
      const rows = keys.map((k) => ({ type: k.type ?? '?', fingerprint: k.fingerprint ?? '(refused)', comment: k.comment ?? '', added: k.added ?? '', refused: k.refused }));
      print(o, rows, () => (rows.length
        ? table(rows.map((r) => ({ ...r, refused: r.refused ?? '' })), ['type', 'fingerprint', 'comment', 'added', ...(rows.some((r) => r.refused) ? ['refused'] : [])])
        : `tenant ${o.tenant} has no keys (add one with \`wt-sync key add --tenant ${o.tenant} id.pub\`)\n`));
    });

  key
    .command('remove')
    .description('remove the key with this SHA256 fingerprint (as `key list` prints it)')
    .requiredOption('--tenant <id>', 'tenant id')
    .argument('<fingerprint>', 'SHA256:… fingerprint')
    .option('--json', 'print the removed key as JSON')
    .action((fingerprint: string, opts: KeyOptions, cmd: Command) => {
      const o = { ...cmd.optsWithGlobals(), ...opts } as KeyOptions;
      const removed = usage(() => removeTenantKey(tenantsDirOf(o), o.tenant, fingerprint));
      if (!removed) throw new UsageError(`tenant ${o.tenant} has no key with fingerprint ${fingerprint} (see \`wt-sync key list --tenant ${o.tenant}\`)`);
      print(o, removed, () => `removed ${removed.type} ${removed.fingerprint}${removed.comment ? ` (${removed.comment})` : ''} from tenant ${o.tenant}; its next login is refused\n`);
      process.exitCode = EXIT.ok;
    });
}
