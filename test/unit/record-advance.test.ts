import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RecordingSession, replayEvents, type RecordEvent } from '../../src/daemon/record';
import { buildProcTree } from '../../src/procfs';
import { createMachine } from '../../src/model';
import { KscrubError, MAX_TICK_NS } from '../../src/uapi';

// A record is input from outside: replay moves its clock no further at once than control's
// `tick` may (24 h), and a recording mount writes a longer stretch of an unread live clock as
// steps of at most that, so every record it writes still replays.

const manual = () => createMachine({ preset: 'x86_64', mem: '1G', clock: 'manual' });

describe('a record\'s advances', () => {
  it('when a live clock jumps 3.5 days between events then the recorder writes it as steps of at most 24 h and replay ends at the same time', async () => {
    const m = manual();
    const events: RecordEvent[] = [];
    let jump = 0;
    const session = new RecordingSession(m, () => m.advanceTo(m.now + jump), { event: (e) => events.push(e) });
    const tree = session.tree(buildProcTree(m, { buddyinfo: 'v6', syncClock: session.syncClock }));
    jump = 3.5 * MAX_TICK_NS;
    session.syncClock(); // a read of an unread live clock
    jump = 0;
    const h = tree.files.get('/sys/vm/scrub_stop')!.open(1);
    h.write!(Buffer.from('3\n'), 0);
    const advances = events.filter((e) => e.ev === 'advance');
    assert.equal(advances.length, 4);
    let last = 0;
    for (const a of advances) {
      assert.ok(a.t - last <= MAX_TICK_NS && a.t > last, `advance to ${a.t} from ${last}`);
      last = a.t;
    }
    assert.equal(last, m.now);
    const replayed = await replayEvents(manual(), 'v6', events);
    assert.equal(replayed.now, m.now);
  });

  it('when an event jumps the clock 24 h and 1 ns past the replay\'s then replay refuses it naming the event, and a jump of 24 h replays', async () => {
    const ok = await replayEvents(manual(), 'v6', [{ ev: 'advance', n: 1, t: MAX_TICK_NS }, { ev: 'advance', n: 2, t: 2 * MAX_TICK_NS }]);
    assert.equal(ok.now, 2 * MAX_TICK_NS);
    await assert.rejects(replayEvents(manual(), 'v6', [{ ev: 'advance', n: 1, t: MAX_TICK_NS }, { ev: 'open', n: 2, t: 2 * MAX_TICK_NS + 1, fd: 1 }]), (err: unknown) => {
      assert.ok(err instanceof KscrubError && err.code === 'KSCRUB_BAD_INPUT');
      assert.match(err.message, /^event 2 \(open\) moves virtual time from 86400000000000 ns to 172800000000001 ns, more than the 24 h a tick may/);
      return true;
    });
  });
});
