// The planner merges snapshot rows and directory users by external ID, each side sorted by SQLite: compareIds must
// order exactly as SQLite's BINARY collation orders the same strings as UTF-8, or the merge would miss matches.
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { compareIds } from '../../src/plan/order.js';

/** mulberry32: a seeded generator with a full 2^32 period. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('compareIds', () => {
  it('orders random IDs (ASCII, accents, U+E000–U+FFFF, emoji) as SQLite does', () => {
    const rand = rng(3);
    const alphabet = ['a', 'B', '0', '-', 'é', 'ø', '\u00a0', '\ue000', '\uff5e', '\ufffd', '😀', '𝔸', '中'];
    const ids = new Set<string>();
    for (let i = 0; i < 100_000 && ids.size < 3000; i++) ids.add(Array.from({ length: 1 + Math.floor(rand() * 5) }, () => alphabet[Math.floor(rand() * alphabet.length)]).join(''));
    const db = new Database(':memory:');
    db.exec('CREATE TABLE t (id TEXT PRIMARY KEY)');
    const insert = db.prepare('INSERT INTO t VALUES (?)');
    for (const id of ids) insert.run(id);
    expect(ids.size).toBe(3000);
    const bySqlite = db.prepare('SELECT id FROM t ORDER BY id').pluck().all() as string[];
    expect([...ids].sort(compareIds)).toEqual(bySqlite);
    // Plain `<` puts U+E000–U+FFFF after the emoji: the order the merge must not use.
    expect([...ids].sort()).not.toEqual(bySqlite);
    db.close();
  });
});
