// Streaming: users reach the sink while the file is still being read, and the file is
// read no faster than rows are validated (backpressure), so memory stays flat.
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { EntityRecord } from '../../src/model.js';
import { parseFile, type DuplicateConflict, type RowSink } from '../../src/parse/parse-file.js';
import { USERS_HEADER, userRow, usersSpec } from './helpers.js';

describe('streaming', () => {
  it('hands rows to the sink as they come and pulls input only as fast as it is consumed', async () => {
    const ROWS = 40_000;
    let produced = 0;
    let maxLead = 0;
    // Lazy source: produces a batch of rows only when the pipeline asks for more.
    const input = Readable.from((function* () {
      yield Buffer.from(USERS_HEADER.join(';') + '\n');
      for (let i = 0; i < ROWS; i += 100) {
        let batch = '';
        for (let k = i; k < i + 100; k++) batch += userRow(`u${k}`) + '\n';
        produced += 100;
        yield Buffer.from(batch);
      }
    })(), { objectMode: false });
    let added = 0;
    let addedBeforeEnd = 0;
    const sink: RowSink = {
      add(_record: EntityRecord, _line: number): DuplicateConflict | null {
        added++;
        if (produced < ROWS) addedBeforeEnd++;
        maxLead = Math.max(maxLead, produced - added);
        return null;
      },
    };
    const result = await parseFile(input, sink, { type: 'users', spec: usersSpec(), fileName: 'big.csv', maxInvalidRowPercent: 20 });
    expect(result).toMatchObject({ status: 'accepted', dataRows: ROWS, validRows: ROWS });
    expect(addedBeforeEnd).toBeGreaterThan(ROWS / 2);
    // Stream buffers hold a bounded number of rows ahead of the sink, not the file.
    expect(maxLead).toBeLessThan(5_000);
  });

  it('stops reading at a file-level header problem (the rest of the input is not consumed)', async () => {
    let pulled = 0;
    const input = Readable.from((function* () {
      yield Buffer.from('a,b,c\n');
      for (let i = 0; i < 100_000; i++) { pulled++; yield Buffer.from('1,2,3\n'); }
    })(), { objectMode: false });
    const result = await parseFile(input, { add: () => null }, { type: 'users', spec: usersSpec(), fileName: 'x.csv', maxInvalidRowPercent: 20 });
    expect(result.status).toBe('rejected');
    expect(pulled).toBeLessThan(100_000);
  });

  it('reports progress in bytes', async () => {
    const text = USERS_HEADER.join(';') + '\n' + userRow('a') + '\n';
    const seen: number[] = [];
    await parseFile(Readable.from([Buffer.from(text)]), { add: () => null }, {
      type: 'users', spec: usersSpec(), fileName: 'x.csv', maxInvalidRowPercent: 20, onProgress: (n) => seen.push(n),
    });
    expect(seen.at(-1)).toBe(Buffer.byteLength(text));
  });

  it('passes I/O errors of the input through to the caller', async () => {
    const input = new Readable({ read() { this.destroy(new Error('disk on fire')); } });
    await expect(parseFile(input, { add: () => null }, { type: 'users', spec: usersSpec(), fileName: 'x.csv', maxInvalidRowPercent: 20 }))
      .rejects.toThrow('disk on fire');
  });
});
