// Benchmark baseline: fast-csv alone, same options as parseFile, counting rows.
import type { Readable } from 'node:stream';
import { createCsvStream } from './csv.js';

export function rawParseCount(input: Readable): Promise<number> {
  return new Promise((resolve, reject) => {
    let rows = 0;
    const csv = createCsvStream();
    input.on('error', (err) => csv.destroy(err));
    csv.on('data', () => { rows++; });
    csv.on('error', reject);
    csv.on('end', () => resolve(rows));
    input.pipe(csv);
  });
}
