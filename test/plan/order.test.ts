// The planner merges snapshot rows and directory users by external ID, each side sorted by SQLite: compareIds must
// order exactly as SQLite's BINARY collation orders the same strings as UTF-8, or the merge would miss matches.
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { compareIds } from '../../src/plan/order.js';

function rng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

describe('compareIds', () => {
  it('orders random IDs (ASCII, accents, U+E000–U+FFFF, emoji) as SQLite does', () => {
    const rand = rng(3);
    const alphabet = ['a', 'B', '0', '-', 'é', 'ø', '\u00a0', '\ue000', '\uff5e', '\ufffd', '😀', '𝔸', '中'];
    const ids = new Set<string>();
    while (ids.size < 3000) ids.add(Array.from({ length: 1 + Math.floor(rand() * 5) }, () => alphabet[Math.floor(rand() * alphabet.length)]).join(''));
    const db = new Database(':memory:');
    db.exec('CREATE TABLE t (id TEXT PRIMARY KEY)');
    const insert = db.prepare('INSERT INTO t VALUES (?)');
    for (const id of ids) insert.run(id);
    const bySqlite = db.prepare('SELECT id FROM t ORDER BY id').pluck().all() as string[];
    expect([...ids].sort(compareIds)).toEqual(bySqlite);
    // Plain `<` puts U+E000–U+FFFF after the emoji: the order the merge must not use.
    expect([...ids].sort()).not.toEqual(bySqlite);
    db.close();
  });
});
