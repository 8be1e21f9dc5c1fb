// What every source kind implements: fetch the tenant's data into complete local files, or fail whole.
// A source never receives, plans or applies: the fetch runner hands its files to intake (intake/handover.ts).
import type { Logger } from 'pino';
import type { TenantConfig } from '../config/schema.js';
import type { FileType } from '../model.js';

/** A fetch that did not complete: no file of it is ever ingested. `where` is the page/URL/file, secrets removed. */
export class FetchError extends Error {
  constructor(message: string, readonly where?: string, readonly hint?: string) {
    super(message);
    this.name = 'FetchError';
  }
}

export interface FetchedFile {
  /** A complete, closed file on the inbox's filesystem. */
  tempPath: string;
  /** The name it is received under (must match the tenant's pattern of its type). */
  name: string;
  sha256: string;
  size: number;
  type?: FileType;
  /** Records of an api fetch; problems then say "record N". */
  records?: number;
}

export interface FetchSummary {
  records?: number;
  files: number;
  pages?: number;
  /** Files skipped because they were fetched before unchanged (sftp-pull). */
  unchanged?: number;
}

export interface FetchResult {
  files: FetchedFile[];
  summary: FetchSummary;
  /** Runs once the files are delivered (sftp-pull: remember them, then keep/delete/move on the server). */
  commit?: () => Promise<void>;
}

export interface FetchContext {
  tenant: TenantConfig;
  logger: Logger;
  /** Where fetched files are written (the tenant's partial folder, or a temp folder for a dry run). */
  workDir: string;
  /** Folder of this fetch's archive (raw responses), or null when nothing is archived (dry run). */
  archiveDir: string | null;
  /** Folder for the source's own state (what sftp-pull fetched before). */
  stateDir: string;
  dryRun: boolean;
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  now: () => Date;
}

export interface Source {
  fetch(ctx: FetchContext): Promise<FetchResult>;
}
