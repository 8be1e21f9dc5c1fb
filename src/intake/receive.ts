// One received file → recorded, checked for duplicates, parsed and validated into staging, then accepted as the
// tenant's new snapshot of its type, or rejected with the reason. Nothing changes in the directory here.
import fs from 'node:fs';
import path from 'node:path';
import type { App } from '../app.js';
import type { TenantConfig } from '../config/schema.js';
import type { FileType, Problem } from '../model.js';
import { parseFile } from '../parse/parse-file.js';
import { StagingSink } from '../snapshot/staging.js';
import { finishFile, lastAcceptedFile, recordFile, supersedeCutOffRecords } from '../store/files.js';
import { commitSnapshot } from '../store/snapshots.js';
import type { ReportFile } from '../report/report.js';
import { fileTypeOf } from './file-type.js';
import { lineToRecord } from './record-numbers.js';
import { sha256File } from './sha256.js';

export interface ReceivedFile extends ReportFile {
  problems: Problem[];
}

/** Row problems kept for a rejected file: nothing in it is applied, so the first ones are enough to fix it. */
export const MAX_REPORTED_ROW_PROBLEMS = 1000;

function capRowProblems(problems: Problem[], file: string): Problem[] {
  const rows = problems.filter((p) => p.level !== 'file');
  if (rows.length <= MAX_REPORTED_ROW_PROBLEMS) return problems;
  return [
    ...problems.filter((p) => p.level === 'file'),
    ...rows.slice(0, MAX_REPORTED_ROW_PROBLEMS),
    { level: 'warning', file, message: `${rows.length - MAX_REPORTED_ROW_PROBLEMS} more row problems are not listed; fix the ones above (they are often all the same mistake) and upload the file again` },
  ];
}

export interface ReceiveOptions {
  /** Name shown in reports; defaults to the base name of the path. */
  name?: string;
  onProgress?: (bytesRead: number, size: number) => void;
  /** The sha256 the source computed while the file arrived (intake/handover.ts); the file is hashed only without it. */
  sha256?: string;
  /** The file renders a source's records (api): problems name "record N" (line N + 1 of the rendering) instead of lines. */
  recordNumbers?: boolean;
  /** The file's type when its name matches no pattern (`ingest --type`); the name's pattern is not consulted. */
  type?: FileType;
}

export async function receiveFile(app: App, tenant: TenantConfig, file: string, opts: ReceiveOptions = {}): Promise<ReceivedFile> {
  const name = opts.name ?? path.basename(file);
  const now = app.now().toISOString();
  const size = fs.statSync(file).size;
  const sha256 = opts.sha256 ?? (await sha256File(file));
  const match = opts.type ? { type: opts.type } : fileTypeOf(tenant, name);
  const type: FileType | null = match.type;
  const base = { name, type, sha256, size };

  const previous = type === null ? undefined : lastAcceptedFile(app.db, tenant.id, type);
  if (previous && previous.sha256 === sha256) {
    const problems: Problem[] = [{ level: 'warning', file: name, message: `same content as ${previous.name} received ${previous.receivedAt} (file #${previous.id}), the tenant's current snapshot; not processed again` }];
    const id = recordFile(app.db, { tenant: tenant.id, ...base, receivedAt: now });
    finishFile(app.db, id, { status: 'duplicate', problems, processedAt: now });
    app.logger.info({ tenant: tenant.id, file: name, sha256, duplicateOf: previous.id }, 'duplicate file');
    return { id, ...base, status: 'duplicate', problems, dataRows: null, validRows: null };
  }

  const id = recordFile(app.db, { tenant: tenant.id, ...base, receivedAt: now });
  supersedeCutOffRecords(app.db, { id, tenant: tenant.id, name, sha256 });
  const reject = (all: Problem[], dataRows?: number, validRows?: number): ReceivedFile => {
    const problems = capRowProblems(all, name);
    finishFile(app.db, id, { status: 'rejected', problems, dataRows, validRows, processedAt: app.now().toISOString() });
    app.logger.warn({ tenant: tenant.id, file: name, sha256, problems: problems.filter((p) => p.level === 'file').map((p) => p.message) }, 'file rejected');
    return { id, ...base, status: 'rejected', problems, dataRows: dataRows ?? null, validRows: validRows ?? null };
  };
  if (match.type === null) {
    return reject([{ level: 'file', file: name, message: match.reason, hint: 'rename the file to match its pattern (e.g. wt_users.csv), or ask WT to change the tenant\'s file patterns' }]);
  }

  const spec = tenant.files[match.type]!;
  const sink = new StagingSink(app.config.paths.tmpDir, match.type);
  try {
    const result = await parseFile(fs.createReadStream(file, { highWaterMark: 1 << 20 }), sink, {
      type: match.type,
      spec,
      fileName: name,
      maxInvalidRowPercent: tenant.safeguards.maxInvalidRowPercent,
      onProgress: opts.onProgress ? (bytes) => opts.onProgress!(bytes, size) : undefined,
    });
    sink.finish();
    if (opts.recordNumbers) result.problems = result.problems.map(lineToRecord);
    if (result.status === 'rejected') return reject(result.problems, result.dataRows, result.validRows);
    const fields = spec.columns.filter((c) => c !== 'ignore');
    commitSnapshot(app.db, {
      tenant: tenant.id, type: match.type, fileId: id, stagingFile: sink.file, fields, problems: result.problems,
      dataRows: result.dataRows, validRows: result.validRows, now: app.now().toISOString(),
    });
    app.logger.info({ tenant: tenant.id, file: name, type: match.type, sha256, rows: result.validRows, problems: result.problems.length }, 'file accepted');
    return { id, ...base, status: 'accepted', problems: result.problems, dataRows: result.dataRows, validRows: result.validRows };
  } catch (err) {
    // An unreadable file must never take the service down; it is rejected with the reason.
    app.logger.error({ tenant: tenant.id, file: name, err }, 'file could not be processed');
    return reject([{ level: 'file', file: name, message: `the file could not be processed: ${(err as Error).message}`, hint: 'upload the file again; if it keeps failing, send it to WT support' }]);
  } finally {
    sink.discard();
  }
}
