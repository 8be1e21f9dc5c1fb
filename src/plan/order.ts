// The one order both sides of the users merge are read in: external IDs by Unicode code point, which is the order
// SQLite's BINARY collation gives UTF-8 text. Plain `<` on JS strings compares UTF-16 code units and puts
// U+E000–U+FFFF after the surrogate pairs (U+10000 and above): the two streams would disagree and the merge fail.

/** Negative, zero or positive as `a` sorts before, with or after `b`. */
export function compareIds(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (U+D800–U+DFFF) stand for code points above U+FFFF: lift them above U+E000–U+FFFF.
    if (x >= 0xd800 && y >= 0xd800) return fix(x) - fix(y);
    return x - y;
  }
  return a.length - b.length;
}

function fix(c: number): number {
  return c >= 0xe000 ? c - 0x800 : c + 0x2000;
}
