#!/usr/bin/env node
// wt-sync command line. Exit codes: 0 ok, 1 rejected or failed, 2 usage.
import { Command, CommanderError } from 'commander';
import { EXIT, exitCodeFor } from './cli/common.js';
import * as approve from './cli/approve.js';
import * as check from './cli/check.js';
import * as directory from './cli/directory.js';
import * as drift from './cli/drift.js';
import * as ingest from './cli/ingest.js';
import * as pull from './cli/pull.js';
import * as key from './cli/key.js';
import * as report from './cli/report.js';
import * as resume from './cli/resume.js';
import * as serve from './cli/serve.js';
import * as status from './cli/status.js';
import * as tenant from './cli/tenant.js';

export function buildProgram(): Command {
  const program = new Command('wt-sync')
    .description('Winningtemp integration service: CSV snapshots in, a reconciled WT directory out')
    .option('--config <path>', 'service config file (env WT_SYNC_CONFIG; default config/wt-sync.yaml)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  for (const command of [serve, check, ingest, status, report, approve, tenant, directory, key, pull, drift, resume]) command.register(program);
  program.commands.forEach(function override(c: Command) {
    c.exitOverride();
    c.commands.forEach(override);
  });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end with code 0; anything else commander rejects is a usage error.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    return exitCodeFor(err);
  }
}

main(process.argv).then((code) => {
  process.exitCode = code;
});
