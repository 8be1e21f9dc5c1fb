// How a staged row is stored in its rows file: the record's values as a JSON array, in the order of its type's
// fields (FIELDS_BY_TYPE in src/model.ts: a stored row depends on that order, so a field is only ever appended there).
// An absent field is 0, which no field holds (a field is a string, null or a list of strings). Two fifths smaller
// than the record as a JSON object and a quarter quicker to parse: a first load, a check and a daily run each write
// or read every row. A rows file staged before this format holds JSON objects; both are read.
import { FIELDS_BY_TYPE, type EntityRecord, type FileType } from '../model.js';

const ABSENT = 0;

export function encodeRow(type: FileType, record: EntityRecord): string {
  const fields = FIELDS_BY_TYPE[type];
  const values = new Array<unknown>(fields.length);
  for (let i = 0; i < fields.length; i++) {
    const v = (record as unknown as Record<string, unknown>)[fields[i]];
    values[i] = v === undefined ? ABSENT : v;
  }
  return JSON.stringify(values);
}

export function decodeRow<T>(type: FileType, data: string): T {
  const parsed = JSON.parse(data) as unknown;
  if (!Array.isArray(parsed)) return parsed as T; // staged as an object, before this format
  const fields = FIELDS_BY_TYPE[type];
  const record: Record<string, unknown> = {};
  for (let i = 0; i < fields.length; i++) if (parsed[i] !== ABSENT) record[fields[i]] = parsed[i];
  return record as T;
}
