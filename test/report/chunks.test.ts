// Reports are written in chunks of about 1 MB of UTF-8: the bytes must be those of the whole text, however the
// pieces fall against the chunk boundary.
import { describe, expect, it } from 'vitest';
import { writeChunked } from '../../src/report/text.js';

function chunked(pieces: string[]): Buffer[] {
  const chunks: Buffer[] = [];
  writeChunked(pieces, (c) => chunks.push(c));
  return chunks;
}

describe('writeChunked', () => {
  it('gives the bytes of the joined text: multi-byte characters across the 1 MB mark, a piece over 1 MB, lone surrogates', () => {
    const pieces: string[] = [];
    // ~1.2 MB of 2-, 3- and 4-byte characters in pieces of odd lengths, then a 1.5 MB piece, then a lone surrogate.
    for (let i = 0; i < 40_000; i++) pieces.push(`${i % 7 === 0 ? 'Åsa 👩‍🍳' : 'Göteborg €'} #${i};\n`);
    pieces.push('x'.repeat(1_500_000));
    pieces.push('half \ud83d pair\n', '');
    for (let i = 0; i < 1000; i++) pieces.push(`ö${i}`);
    const chunks = chunked(pieces);
    expect(Buffer.concat(chunks).equals(Buffer.from(pieces.join(''), 'utf8'))).toBe(true);
    expect(chunks.length).toBeGreaterThan(2);
    for (const c of chunks.slice(0, -1)) expect(c.length).toBeGreaterThan(0);
    // Each chunk is its own buffer: a stream may still hold the one before.
    expect(new Set(chunks.map((c) => c.buffer)).size).toBe(chunks.length);
  });

  it('writes nothing for no text', () => {
    expect(chunked([])).toEqual([]);
    expect(chunked(['', ''])).toEqual([]);
  });
});
