// Deterministic generators for benchmark snapshot files in the seed guide's column order (`;`-separated, UTF-8).
// Users are stream-written in chunks with backpressure, so a 1M-row file never exists as one string in memory.
import fs from 'node:fs';
import { once } from 'node:events';
import { SEED_HEADERS } from '../../src/config/tenant-template.js';

/** mulberry32: small, fast, deterministic; the same seed gives the same file on every machine. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIRST = ['Anna', 'Erik', 'Maria', 'Lars', 'Karin', 'Anders', 'Eva', 'Johan', 'Sara', 'Per', 'Åsa', 'Björn', 'Linnéa', 'Mikael',
  'Emma', 'Oskar', 'Ingrid', 'Mats', 'Sofia', 'Jörgen', 'Mark', 'Olivia', 'James', 'Chloé', 'Noah', 'Zoë', 'Liam', 'Ava', 'Håkan', 'Maja'];
const LAST = ['Andersson', 'Johansson', 'Karlsson', 'Nilsson', 'Eriksson', 'Larsson', 'Olsson', 'Persson', 'Svensson', 'Gustafsson',
  'Sjöberg', 'Lindqvist', 'Öberg', 'Bäckström', 'Johnson', 'Smith', 'Brown', 'Müller', 'García', 'Dubois', 'Åkesson', 'Holm'];
const TITLES = ['Developer', 'Senior Developer', 'Project Manager', 'Sales Representative', 'Accountant', 'HR Partner', 'Designer',
  'Support Engineer', 'Team Lead', 'Nurse', 'Teacher', 'Warehouse Operator', 'Consultant', 'Analyst', 'Product Owner'];
const LANGUAGES = ['en-US', 'sv-SE', 'sv-SE', 'sv-SE', 'nb-NO', 'da-DK', 'fi-FI', 'de-DE', 'en-GB'];
const SEGMENT_NAMES = ['Sweden', 'Norway', 'Denmark', 'Finland', 'Germany', 'United Kingdom', 'Developers', 'Sales', 'Support', 'Managers'];

const ASCII: Record<string, string> = { å: 'a', ä: 'a', ö: 'o', é: 'e', ë: 'e', ü: 'u', í: 'i' };
const ascii = (s: string) => s.toLowerCase().replace(/[^a-z]/g, (c) => ASCII[c] ?? '');

export const groupId = (i: number) => `grp-${String(i).padStart(4, '0')}`;
export const segmentId = (i: number) => `seg-${String(i).padStart(2, '0')}`;

async function writeLines(file: string, header: string[], rows: number, line: (i: number) => string): Promise<number> {
  const out = fs.createWriteStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 });
  const done = new Promise<void>((resolve, reject) => { out.on('finish', resolve); out.on('error', reject); });
  out.write(header.join(';') + '\n');
  let chunk = '';
  for (let i = 0; i < rows; i++) {
    chunk += line(i) + '\n';
    if ((i & 1023) === 1023) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end(chunk);
  await done;
  return fs.statSync(file).size;
}

/** 20 top-level groups; each further group hangs under an earlier one, so the file is a valid tree. */
export function writeGroups(file: string, count: number, topLevel = 20, seed = 7): Promise<number> {
  const r = rng(seed);
  return writeLines(file, SEED_HEADERS.groups, count, (i) => {
    const parent = i < topLevel ? '' : groupId(Math.floor(r() * i));
    return `${i < topLevel ? 'Division' : 'Team'} ${i + 1};${groupId(i)};${parent}`;
  });
}

export function writeSegments(file: string, count: number, seed = 11): Promise<number> {
  void seed;
  return writeLines(file, SEED_HEADERS.segments, count, (i) =>
    `${SEGMENT_NAMES[i % SEGMENT_NAMES.length]}${i >= SEGMENT_NAMES.length ? ` ${Math.floor(i / SEGMENT_NAMES.length) + 1}` : ''};${segmentId(i)}`);
}

export interface UsersOptions {
  rows: number;
  groups: number;
  segments: number;
  seed?: number;
  /** Day 2: every `changeEvery`-th user gets a different title (1% = 100). */
  changeEvery?: number;
}

const hex = (r: () => number, n: number) => {
  let s = '';
  for (let i = 0; i < n; i++) s += ((r() * 16) | 0).toString(16);
  return s;
};
const pad2 = (n: number) => (n < 10 ? '0' : '') + n;
const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
function date(r: () => number, fromYear: number, toYear: number): string {
  const y = fromYear + Math.floor(r() * (toYear - fromYear + 1));
  const m = 1 + Math.floor(r() * 12);
  const d = 1 + Math.floor(r() * DAYS[m - 1]); // Feb stops at 28: always a real date
  return `${y}-${pad2(m)}-${pad2(d)}`;
}

/**
 * Users in SEED_COLUMNS order. Deterministic per seed: the day-2 file is the same file with `changeEvery`'s titles
 * changed, so exactly those users differ. Returns the file size and the number of users changed.
 */
export async function writeUsers(file: string, o: UsersOptions): Promise<{ bytes: number; changed: number }> {
  const r = rng(o.seed ?? 42);
  let changed = 0;
  const bytes = await writeLines(file, SEED_HEADERS.users, o.rows, (i) => {
    const first = FIRST[Math.floor(r() * FIRST.length)];
    const last = LAST[Math.floor(r() * LAST.length)];
    // UUID-like, unique by construction (the last block carries the row index).
    const externalId = `${hex(r, 8)}-${hex(r, 4)}-4${hex(r, 3)}-a${hex(r, 3)}-${i.toString(16).padStart(12, '0')}`;
    const username = `${ascii(first)}.${ascii(last)}.${i}@example.com`;
    const email = username;
    const phone = `+46 70 ${String(Math.floor(r() * 1e7)).padStart(7, '0')}`;
    let title = TITLES[Math.floor(r() * TITLES.length)];
    const birthday = date(r, 1955, 2004);
    const since = date(r, 2000, 2024);
    const until = r() < 0.1 ? date(r, 2025, 2030) : '';
    const gender = r() < 0.5 ? 'M' : 'F';
    const nGroups = 1 + Math.floor(r() * 3);
    const member: string[] = [];
    while (member.length < nGroups) {
      const g = groupId(Math.floor(r() * o.groups));
      if (!member.includes(g)) member.push(g);
    }
    const admin = r() < 0.05 ? member[0] : '';
    const nSeg = 1 + Math.floor(r() * 2);
    const segs: string[] = [];
    while (segs.length < nSeg) {
      const s = segmentId(Math.floor(r() * o.segments));
      if (!segs.includes(s)) segs.push(s);
    }
    const status = r() < 0.95 ? 'Active' : 'Inactive';
    const language = LANGUAGES[Math.floor(r() * LANGUAGES.length)];
    if (o.changeEvery && i % o.changeEvery === 0) {
      title = `${title} (changed)`;
      changed++;
    }
    return [externalId, first, last, username, email, phone, title, birthday, since, until, gender,
      member.join(','), admin, segs.join(','), status, language].join(';');
  });
  return { bytes, changed };
}
