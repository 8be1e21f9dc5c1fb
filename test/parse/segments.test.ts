import { describe, expect, it } from 'vitest';
import { run } from './helpers.js';

const file = (...rows: string[]) => ['SegmentName;SegmentID', ...rows].join('\n');

describe('segments rows', () => {
  it('name and external ID mandatory; duplicate ID is a row error on the later row', async () => {
    const { result, sink } = await run('segments', file('Sweden;swe', ';uk', 'Nameless;', 'Sverige;swe', ...Array.from({ length: 12 }, (_, i) => `S${i};s${i}`)));
    expect(result.status).toBe('accepted');
    expect(sink.records[0]).toEqual({ line: 2, record: { externalId: 'swe', name: 'Sweden' } });
    expect(sink.records).toHaveLength(13);
    expect(result.problems).toEqual([
      expect.objectContaining({ line: 3, column: 'SegmentName', entityId: 'uk', message: 'name is mandatory but "SegmentName" is empty' }),
      expect.objectContaining({ line: 4, column: 'SegmentID', message: 'external ID is mandatory but "SegmentID" is empty' }),
      expect.objectContaining({ line: 5, column: 'SegmentID', value: 'swe', entityId: 'swe', message: 'duplicate external ID "swe": already used on line 2' }),
    ]);
  });
});
