// Shared specs and runners for the parse tests.
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { TenantFileSpec } from '../../src/config/schema.js';
import type { FileType } from '../../src/model.js';
import { MemorySink } from '../../src/parse/memory-sink.js';
import { parseFile, type ParseResult } from '../../src/parse/parse-file.js';

export const USERS_HEADER = [
  'Unique ID', 'Firstname', 'Lastname', 'Username', 'Email', 'Phone', 'Title', 'Birthday', 'EmployedSince',
  'EmployedUntil', 'Gender', 'Group member', 'Group admin', 'Segment', 'Status', 'Language',
];

export function usersSpec(over: Partial<TenantFileSpec> = {}): TenantFileSpec {
  return {
    pattern: '*users*.csv',
    columns: ['externalId', 'firstName', 'lastName', 'username', 'email', 'phone', 'title', 'birthday', 'employedSince',
      'employedUntil', 'gender', 'memberOf', 'adminOf', 'segments', 'status', 'language'],
    header: USERS_HEADER,
    listSeparator: ',',
    valueMaps: {},
    ...over,
  };
}

export function groupsSpec(over: Partial<TenantFileSpec> = {}): TenantFileSpec {
  return { pattern: '*groups*.csv', columns: ['name', 'externalId', 'parentId'], header: ['Group name', 'GroupID', 'Parent groupID'], listSeparator: ',', valueMaps: {}, ...over };
}

export function segmentsSpec(over: Partial<TenantFileSpec> = {}): TenantFileSpec {
  return { pattern: '*segments*.csv', columns: ['name', 'externalId'], header: ['SegmentName', 'SegmentID'], listSeparator: ',', valueMaps: {}, ...over };
}

const SPECS: Record<FileType, () => TenantFileSpec> = { users: usersSpec, groups: groupsSpec, segments: segmentsSpec };

export function fixture(path: string): Buffer {
  return readFileSync(fileURLToPath(new URL(`../fixtures/${path}`, import.meta.url)));
}

/** A stream of the bytes cut into chunks of `chunkSize` (to split characters and rows anywhere). */
export function chunked(data: Buffer | string, chunkSize = 65536): Readable {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunkSize) chunks.push(buf.subarray(i, i + chunkSize));
  return Readable.from(chunks, { objectMode: false });
}

export interface Run {
  result: ParseResult;
  sink: MemorySink;
}

export async function run(
  type: FileType,
  data: Buffer | string,
  opts: { spec?: TenantFileSpec; chunkSize?: number; maxInvalidRowPercent?: number; fileName?: string } = {},
): Promise<Run> {
  const sink = new MemorySink();
  const result = await parseFile(chunked(data, opts.chunkSize), sink, {
    type,
    spec: opts.spec ?? SPECS[type](),
    fileName: opts.fileName ?? `${type}.csv`,
    maxInvalidRowPercent: opts.maxInvalidRowPercent ?? 20,
  });
  return { result, sink };
}

/** One users row in the USERS_HEADER order; override any cell by header name. */
export function userRow(id: string, cells: Partial<Record<string, string>> = {}): string {
  const base: Record<string, string> = {
    'Unique ID': id, Firstname: `First ${id}`, Lastname: `Last ${id}`, Username: `user-${id}`, Email: `${id}@example.com`,
    Phone: '08-111111', Title: 'Developer', Birthday: '1980-01-02', EmployedSince: '2019-01-10', EmployedUntil: '',
    Gender: 'F', 'Group member': 'g1', 'Group admin': '', Segment: 'swe', Status: 'Active', Language: 'sv-SE', ...cells,
  };
  return USERS_HEADER.map((h) => base[h]).join(';');
}

export function usersFile(...rows: string[]): string {
  return [USERS_HEADER.join(';'), ...rows].join('\n') + '\n';
}

export const messages = (r: ParseResult) => r.problems.map((p) => p.message);
