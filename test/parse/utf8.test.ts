import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Utf8Error, Utf8Guard, firstInvalidIndex } from '../../src/parse/utf8.js';
import { pipeline } from 'node:stream/promises';
import { fixture, run, USERS_HEADER, userRow } from './helpers.js';

async function through(chunks: Buffer[]): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks, { objectMode: false }), new Utf8Guard(), async (src: AsyncIterable<Buffer>) => { for await (const c of src) out.push(c); });
  return Buffer.concat(out);
}

describe('Utf8Guard', () => {
  const text = 'Åsa;Lindström;😀;日本\r\nÖ;é\n';
  const bytes = Buffer.from(text);

  it('passes valid UTF-8 through unchanged when chunks split a character anywhere', async () => {
    for (let cut = 1; cut < bytes.length; cut++) {
      const out = await through([bytes.subarray(0, cut), bytes.subarray(cut)]);
      expect(out.toString()).toBe(text);
    }
    const oneByOne = await through([...bytes].map((b) => Buffer.from([b])));
    expect(oneByOne.toString()).toBe(text);
  });

  it('strips a BOM, even when it arrives split', async () => {
    const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes]);
    expect((await through([withBom])).toString()).toBe(text);
    expect((await through([withBom.subarray(0, 1), withBom.subarray(1, 2), withBom.subarray(2)])).toString()).toBe(text);
  });

  it('names the 1-based byte offset and line of the first invalid byte', async () => {
    const bad = Buffer.concat([Buffer.from('ab\r\ncd\ne'), Buffer.from([0xe9]), Buffer.from('f\n')]);
    for (const cut of [1, 5, 8, 9]) {
      const err = await through([bad.subarray(0, cut), bad.subarray(cut)]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Utf8Error);
      expect(err).toMatchObject({ byteOffset: 9, line: 3, bytesHex: 'E9' });
    }
  });

  it('rejects a sequence cut off at the end of the file, overlongs and surrogates', async () => {
    const cut = Buffer.from('abc😀').subarray(0, 5);
    await expect(through([cut])).rejects.toMatchObject({ byteOffset: 4 });
    expect(firstInvalidIndex(Buffer.from([0x61, 0xc0, 0x80]))).toBe(1); // overlong NUL
    expect(firstInvalidIndex(Buffer.from([0xed, 0xa0, 0x80]))).toBe(0); // UTF-16 surrogate
    expect(firstInvalidIndex(Buffer.from([0xf4, 0x90, 0x80, 0x80]))).toBe(0); // above U+10FFFF
    expect(firstInvalidIndex(Buffer.from('ok Åsa'))).toBe(-1);
  });

  it('counts CRLF once and a lone CR as a line break', async () => {
    const bad = Buffer.concat([Buffer.from('a\r\nb\rc\n'), Buffer.from([0xff])]);
    await expect(through([bad.subarray(0, 2), bad.subarray(2)])).rejects.toMatchObject({ line: 4, byteOffset: 8 });
  });

  it('reports progress in bytes read', async () => {
    const seen: number[] = [];
    await pipeline(Readable.from([bytes.subarray(0, 10), bytes.subarray(10)], { objectMode: false }), new Utf8Guard((n) => seen.push(n)), async (src: AsyncIterable<Buffer>) => { for await (const _ of src); });
    expect(seen).toEqual([10, bytes.length]);
  });
});

describe('parseFile: encoding', () => {
  it('rejects a Windows-1252 file with line, byte offset and the "save as CSV UTF-8" hint; nothing after it reaches the sink', async () => {
    const data = fixture('parse/users-windows1252.csv');
    const offset = data.indexOf(0xf6) + 1;
    const { result, sink } = await run('users', data, { chunkSize: 16 });
    expect(result.status).toBe('rejected');
    const file = result.problems.filter((p) => p.level === 'file');
    expect(file).toHaveLength(1);
    expect(file[0]).toMatchObject({ line: 3, byteOffset: offset, value: 'F6' });
    expect(file[0].message).toContain(`the file is not valid UTF-8: line 3, byte ${offset}`);
    expect(file[0].hint).toBe('the file looks saved as Windows-1252/Latin-1: open it and save it as "CSV UTF-8"');
    // Only row 2 (before the bad byte) can have reached the sink, and the caller
    // discards the sink on 'rejected'; whether it got there first is a race.
    expect(sink.records.every((r) => r.line === 2)).toBe(true);
    expect(result.validRows).toBe(sink.records.length);
  });

  it('recognises a UTF-16 file by its BOM', async () => {
    const data = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(USERS_HEADER.join(';'), 'utf16le')]);
    const { result, sink } = await run('users', data);
    expect(result.status).toBe('rejected');
    expect(result.problems[0]).toMatchObject({ level: 'file', line: 1, byteOffset: 1 });
    expect(result.problems[0].hint).toContain('UTF-16');
    expect(sink.records).toHaveLength(0);
  });

  it('accepts BOM + CRLF and returns the header without the BOM', async () => {
    const { result, sink } = await run('users', fixture('parse/users-bom-crlf.csv'), { chunkSize: 7 });
    expect(result).toMatchObject({ status: 'accepted', dataRows: 2, validRows: 2, problems: [] });
    expect(result.header[0]).toBe('Unique ID');
    expect(sink.records.map((r) => [r.line, r.record.externalId])).toEqual([[2, 'u1'], [3, 'u2']]);
    expect(sink.records[0].record).toMatchObject({ firstName: 'Åsa', lastName: 'Lindström' });
  });

  it('never loses a character split across chunk boundaries in a full parse', async () => {
    const data = [USERS_HEADER.join(';'), userRow('u1', { Firstname: 'Åsa-Märta 😀', Title: 'Señor Developer' })].join('\n');
    for (const chunkSize of [1, 2, 3, 5]) {
      const { result, sink } = await run('users', data, { chunkSize });
      expect(result.status).toBe('accepted');
      expect(sink.records[0].record).toMatchObject({ firstName: 'Åsa-Märta 😀', title: 'Señor Developer' });
    }
  });
});
