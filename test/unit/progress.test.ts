// The progress line's text: what runs, how far, and the time left estimated from the rate so far.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration, progressText } from '../../src/cli/progress';

describe('progress line', () => {
  it('when a run is part done then the line adds the share done and the time left at the rate so far', () => {
    assert.equal(progressText('sweep t: 10/40 points', 20_000, 10, 40), 'sweep t: 10/40 points — 25 %, about 1 min 00 s left');
    assert.equal(progressText('calibrate: row 2 of 26', 5_000, 1, 26), 'calibrate: row 2 of 26 — 4 %, about 2 min 05 s left');
    assert.equal(progressText('x', 3_600_000, 1, 3), 'x — 33 %, about 2 h 00 min left');
  });

  it('when nothing is done yet, or the total is unknown or reached, then the line is the message alone', () => {
    assert.equal(progressText('mounting', 5_000, 0, 10), 'mounting');
    assert.equal(progressText('replaying', 5_000, 100, undefined), 'replaying');
    assert.equal(progressText('done', 5_000, 10, 10), 'done');
    assert.equal(progressText('plain', 5_000), 'plain');
  });

  it('when durations are formatted then seconds, minutes and hours read as people write them', () => {
    assert.deepEqual([0, 999, 45_000, 60_000, 200_000, 3_600_000, 3_900_000].map(formatDuration),
      ['0 s', '1 s', '45 s', '1 min 00 s', '3 min 20 s', '1 h 00 min', '1 h 05 min']);
  });
});
