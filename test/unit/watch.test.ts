import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { barCells, renderFrame, stripCell, summarize, wrap, type FrameOptions } from '../../src/workload/watch';
import { parseBuddyinfo, parseLoadavg, parseMeminfo, parseUptime, parseVmstat } from '../../src/uapi';
import { readSample, type Sample } from '../../src/workload/watch-files';

// The watch view without a mount: its parsers on the golden files (ours, v6 and stock) and on a
// real 6.18 kernel's, its summary on hand-made samples, its frame's numbers and layout.

const GOLDEN = path.resolve(__dirname, '../../../test/golden');
const golden = (dir: string, file: string): string => readFileSync(path.join(GOLDEN, dir, file), 'utf8');

const PLAIN: FrameOptions = { dir: '/m', intervalS: 1, columns: 80, rows: Infinity, color: false, layout: 'stack', pageKb: 16 };

/** A sample with the given vmstat counters (and a two-zone v6 buddyinfo). */
function sample(over: { uptimeS?: number; uptimeFirstS?: number; wallMs?: number; vmstat?: Record<string, number>; runnable?: number | null; scrubStart?: number } = {}): Sample {
  return {
    wallMs: over.wallMs ?? 0,
    uptimeS: over.uptimeS ?? 10,
    uptimeFirstS: over.uptimeFirstS ?? over.uptimeS ?? 10,
    buddy: parseBuddyinfo(
      'Node 0, zone      DMA      1      0      0 \n        Zeroed Pages       0      2      1 \n' +
      'Node 1, zone      DMA      0      0      3 \n        Zeroed Pages       0      0      0 \n',
    ),
    meminfo: new Map([['MemFree', 1000], ['MemZero', 250]]),
    vmstat: new Map(Object.entries({ kscrubd_pages: 0, kscrubd_bursts: 0, nr_scrub_pages: 0, pgfault: 0, pgfault_prezeroed: 0, pgfault_hot_zeroed: 0, ...over.vmstat })),
    runnable: over.runnable === undefined ? 0 : over.runnable,
    sysctl: new Map([['scrub_start', over.scrubStart ?? 2], ['scrub_stop', 1]]),
  };
}

describe('watch: parsing the files', () => {
  for (const preset of ['altix', 'x86_64']) {
    test(`when ${preset}'s v6 and stock buddyinfo are parsed then the totals agree and only v6 has a split`, () => {
      const v6 = parseBuddyinfo(golden(preset, 'buddyinfo'));
      const stock = parseBuddyinfo(golden(preset, 'buddyinfo.stock'));
      assert.ok(v6.length > 0);
      assert.deepEqual(v6.map((z) => [z.node, z.zone, z.total]), stock.map((z) => [z.node, z.zone, z.total]));
      assert.ok(v6.every((z) => z.zeroed !== null && z.zeroed.length === z.total.length));
      assert.ok(stock.every((z) => z.zeroed === null));
    });
  }

  test('when a v6 zone is parsed then the first line is its not-zeroed blocks and total adds the zeroed ones', () => {
    const [z] = parseBuddyinfo('Node 2, zone   Normal      5      0      1 \n        Zeroed Pages       1      4      0 \n');
    assert.deepEqual(z, { node: 2, zone: 'Normal', counts: [5, 0, 1], total: [6, 4, 1], zeroed: [1, 4, 0] });
  });

  test('when buddyinfo has a stray line or mixes formats then the error names the file, the line and the token', () => {
    const zone = (node: number): string => `Node ${node}, zone      DMA      1      2 \n`;
    const zeroed = '        Zeroed Pages       0      0 \n';
    assert.throws(() => parseBuddyinfo(`${zone(0)}bogus\n`), { code: 'KSCRUB_PROC_FORMAT', message: 'buddyinfo line 2: expected "Node %d, zone %8s ": "bogus"' });
    assert.throws(() => parseBuddyinfo(`${zone(0)}${zeroed}${zone(1)}`), { message: 'buddyinfo line 4: expected the "Zeroed Pages" line of node 1 zone DMA' });
    assert.throws(() => parseBuddyinfo(`${zone(0)}${zone(1)}${zeroed}`), { message: /^buddyinfo line 3: expected "Node %d, zone %8s ": "        Zeroed Pages/ });
    assert.throws(() => parseBuddyinfo('Node 0, zone DMA 1 2\n'), { message: 'buddyinfo line 1: expected "Node %d, zone %8s ": "Node 0, zone DMA 1 2"' });
  });

  test("when a real 6.18 kernel's files are read then nothing is missing but MemZero, kscrubd and sys/vm", async () => {
    const s = await readSample(path.join(GOLDEN, 'kernel-6.18'));
    assert.deepEqual(s.buddy.map((z) => z.zone), ['DMA', 'DMA32', 'Normal']);
    assert.equal(s.uptimeS, 1685.14);
    assert.equal(s.runnable, 1);
    assert.equal(s.meminfo.get('MemZero'), undefined);
    assert.ok(s.meminfo.get('MemFree')! > 0);
    assert.equal(s.sysctl.size, 0);
    const frame = renderFrame(summarize(undefined, s), s, PLAIN).join('\n');
    assert.match(frame, /MemZero n\/a/);
    assert.match(frame, /kscrubd   n\/a: vmstat has no kscrubd_\* counters/);
    assert.match(frame, /buddyinfo stock format: no zeroed \/ not-zeroed split/);
  });

  test('when meminfo, vmstat, uptime and loadavg are parsed then units are read and a malformed line is an error, never skipped', () => {
    const meminfo = 'MemTotal:        8000000 kB\nMemFree:         6236368 kB\nMemAvailable:    7000000 kB\nHugePages_Total:       0\n';
    assert.deepEqual([...parseMeminfo(meminfo)], [['MemTotal', 8000000], ['MemFree', 6236368], ['MemAvailable', 7000000], ['HugePages_Total', 0]]);
    assert.throws(() => parseMeminfo(meminfo.replace('MemFree:         6236368 kB', 'MemFree: 6236368')), { message: 'meminfo line 2: expected a kB unit: "MemFree: 6236368"' });
    assert.deepEqual([...parseVmstat('nr_free_pages 5\npgfault 12\n')], [['nr_free_pages', 5], ['pgfault', 12]]);
    assert.throws(() => parseVmstat('nr_free_pages 5\nnot a pair\nkscrubd_pages 3\n'), { message: 'vmstat line 2: expected "name value": "not a pair"' });
    assert.deepEqual(parseUptime('12.34 98.76\n'), { uptime: 12.34, idle: 98.76 });
    assert.deepEqual(parseLoadavg('0.00 0.01 0.05 4/9 17\n'), { avg: [0, 0.01, 0.05], running: 4, threads: 9, lastPid: 17 });
    assert.throws(() => parseUptime('soon\n'), { message: 'uptime line 1: expected "<seconds> <idle seconds>": "soon"' });
    assert.throws(() => parseUptime('12.34 98.76'), { message: 'uptime: does not end with a newline: "12.34 98.76"' });
  });
});

describe('watch: what the view says', () => {
  test('when kscrubd holds a block, is runnable, or zeroed pages since the last sample then it is awake', () => {
    assert.equal(summarize(undefined, sample({ vmstat: { nr_scrub_pages: 16 } })).kscrubd.state, 'awake');
    assert.equal(summarize(undefined, sample({ runnable: 2 })).kscrubd.state, 'awake');
    const grew = summarize(sample({ vmstat: { kscrubd_pages: 100 } }), sample({ vmstat: { kscrubd_pages: 164 } }));
    assert.equal(grew.kscrubd.state, 'awake');
    assert.equal(summarize(undefined, sample()).kscrubd.state, 'asleep');
  });

  test('when kscrubd sleeps and scrub_start is MAX_ORDER then it is off; without kscrubd counters n/a', () => {
    assert.equal(summarize(undefined, sample({ scrubStart: 3 })).kscrubd.state, 'off', 'three orders in buddyinfo: MAX_ORDER 3');
    assert.equal(summarize(undefined, sample({ scrubStart: 3, runnable: 1 })).kscrubd.state, 'awake');
    const none = sample();
    (none.vmstat as Map<string, number>).delete('kscrubd_pages');
    assert.equal(summarize(undefined, none).kscrubd.state, 'n/a');
  });

  test('when two samples are 2 virtual seconds apart then rates are per virtual second, not per wall second', () => {
    const s = summarize(
      sample({ uptimeS: 10, wallMs: 0, vmstat: { kscrubd_pages: 1000, pgfault: 50, pgfault_prezeroed: 10, pgfault_hot_zeroed: 10 } }),
      sample({ uptimeS: 12, wallMs: 500, vmstat: { kscrubd_pages: 5000, pgfault: 250, pgfault_prezeroed: 310, pgfault_hot_zeroed: 110 } }),
    );
    assert.equal(s.virtualDtS, 2);
    assert.equal(s.wallDtS, 0.5);
    assert.equal(s.kscrubd.pagesPerS, 2000);
    assert.equal(s.faults!.perS, 100);
    assert.equal(s.faults!.prezeroedShare, 0.75, '300 of the 400 pages faults took since the last sample');
    assert.equal(s.faults!.sinceBoot.prezeroedShare, 310 / 420);
  });

  test('when there is one sample or the clock stood still then the rates are "-"', () => {
    const still = summarize(sample({ vmstat: { pgfault: 5 } }), sample({ vmstat: { pgfault: 9 } }));
    assert.equal(still.faults!.perS, null);
    assert.equal(summarize(undefined, sample()).kscrubd.pagesPerS, null);
    const frame = renderFrame(still, sample(), PLAIN).join('\n');
    assert.match(frame, /^faults {4}-\/s, - of pages prezeroed$/m);
    assert.match(frame, /^kscrubd {3}asleep: - pages\/s$/m);
    assert.match(frame, /^ {10}since boot: 0 pages zeroed in 0 bursts; scrub_start 2, scrub_stop 1$/m);
  });
});

describe('watch: the frame', () => {
  test('when a bar is drawn then its cells follow the pages, a lone page still shows, and both classes keep a cell', () => {
    assert.deepEqual(barCells(0, 0, 100, 20), { zeroed: 0, notZeroed: 0 });
    assert.deepEqual(barCells(50, 50, 100, 20), { zeroed: 10, notZeroed: 10 });
    assert.deepEqual(barCells(0, 100, 100, 20), { zeroed: 20, notZeroed: 0 });
    assert.deepEqual(barCells(1, 0, 1_000_000, 20), { zeroed: 0, notZeroed: 1 });
    assert.deepEqual(barCells(99, 1, 100, 20), { zeroed: 1, notZeroed: 19 });
    assert.deepEqual(barCells(1, 3, 1_000_000, 20), { zeroed: 1, notZeroed: 0 }, 'one cell: the larger class');
  });

  test('when the frame is plain text then each order shows its buddyinfo counts and a bar of its pages', () => {
    const cur = sample();
    const lines = renderFrame(summarize(undefined, cur), cur, PLAIN);
    assert.ok(lines.every((l) => !l.includes('\x1b')), 'no escape codes');
    const n0 = lines.indexOf('Node 0, zone DMA: 9 pages free');
    assert.ok(n0 > 0, lines.join('\n'));
    // zone 0: order 0: 1 not zeroed; order 1: 2 zeroed (4 pages); order 2: 1 zeroed (4 pages). 9 pages, 8 zeroed.
    assert.match(lines[n0 + 1]!, /^order not zeroed zeroed 88\.9% zeroed$/);
    const barW = 80 - 24;
    assert.equal(lines[n0 + 2], `    0          1      0 ${'='.repeat(Math.round((1 / 9) * barW))}`);
    assert.equal(lines[n0 + 3], `    1          0      2 ${'#'.repeat(Math.round((4 / 9) * barW))}`);
    assert.equal(lines[n0 + 4], `    2          0      1 ${'#'.repeat(Math.round((4 / 9) * barW))}`);
    assert.equal(lines[n0 + 10], `    2          3      0 ${'='.repeat(barW)}`, 'node 1: all its 12 pages at order 2');
    assert.match(lines.join('\n'), /^MemFree {3}1000 kB {3}MemZero 250 kB \(25\.0% of free\)$/m);
  });

  test('when the terminal is 120 × 60 then zones sit side by side and no line is wider than the screen', () => {
    const altix = parseBuddyinfo(golden('altix', 'buddyinfo'));
    const cur = { ...sample(), buddy: altix };
    const opts: FrameOptions = { ...PLAIN, layout: 'grid', columns: 120, rows: 60, color: true, footer: 'Ctrl-C quits' };
    const lines = renderFrame(summarize(undefined, cur), cur, opts);
    const visible = lines.map((l) => l.replace(/\x1b\[[0-9;]*m/g, ''));
    assert.ok(visible.every((l) => l.length <= 120), visible.find((l) => l.length > 120));
    assert.ok(lines.length <= 60); // two rows of two altix zones, 18 orders each
    assert.ok(visible.some((l) => /^Node 0, zone DMA: .* Node 1, zone DMA: /.test(l)), 'two zones on one row');
    assert.equal(visible.at(-1), 'Ctrl-C quits');
    assert.ok(lines.some((l) => l.includes('\x1b[32m#')), 'zeroed cells in green');
  });

  test('when the terminal is 80 × 24 then every zone has a line, orders as a strip, and the header is not cut', () => {
    const altix = parseBuddyinfo(golden('altix', 'buddyinfo'));
    const vm = { kscrubd_pages: 613248, kscrubd_bursts: 8, nr_scrub_pages: 4096, pgfault: 131252, pgfault_prezeroed: 61000, pgfault_hot_zeroed: 70000 };
    const prev = { ...sample({ uptimeS: 10, wallMs: 0, vmstat: vm, scrubStart: 5 }), buddy: altix };
    // The clock moved during the reads (a live clock): the note line must fit too.
    const cur = { ...sample({ uptimeFirstS: 11.19, uptimeS: 11.2, wallMs: 1000, runnable: 4, scrubStart: 5, vmstat: { ...vm, kscrubd_pages: 706261, pgfault: 172312 } }), buddy: altix };
    const lines = renderFrame(summarize(prev, cur), cur, { ...PLAIN, layout: 'grid', columns: 80, rows: 24, footer: 'Ctrl-C quits' });
    assert.ok(lines.length <= 24, `${lines.length} lines`);
    assert.ok(lines.every((l) => l.length <= 80), lines.find((l) => l.length > 80));
    assert.ok(!lines.some((l) => /more lines/.test(l)));
    const zones = lines.filter((l) => /^N\d DMA /.test(l));
    assert.deepEqual(zones.map((l) => l.slice(0, 6)), ['N0 DMA', 'N1 DMA', 'N2 DMA', 'N3 DMA']);
    for (const z of zones) assert.match(z, /\[[.=#1-9]{18}\]$/); // altix's 18 orders
    assert.match(lines.join('\n'), /scrub_stop 1/, 'the header wraps instead of cutting scrub_stop off');
    assert.match(lines.join('\n'), /figures from different files may disagree/, 'the note wraps instead of being cut');
    assert.match(lines.join('\n'), /1-9 tenths zeroed/, 'the strip legend wraps instead of being cut');
    assert.equal(lines.at(-1), 'Ctrl-C quits');
  });

  test('when a strip cell is drawn then it says none, all not zeroed, all zeroed, or the tenths zeroed', () => {
    assert.deepEqual([stripCell(0, 0), stripCell(5, 0), stripCell(0, 5), stripCell(9, 1), stripCell(1, 99), stripCell(50, 50)], ['.', '=', '#', '1', '9', '5']);
    assert.deepEqual(wrap('kscrubd   awake: 5 pages/s, 4/4 runnable', 30), ['kscrubd   awake: 5 pages/s,', '          4/4 runnable']);
  });

  test('when the clock moved while the files were read then the frame says so', () => {
    const cur = sample({ uptimeFirstS: 9.5, uptimeS: 10 });
    assert.match(renderFrame(summarize(undefined, cur), cur, PLAIN).join('\n'), /^note +the clock moved 0\.50 s while these files were read/m);
    assert.doesNotMatch(renderFrame(summarize(undefined, sample()), sample(), PLAIN).join('\n'), /clock moved/);
  });

  test('when even the compact layout does not fit then the frame is cut with a note', () => {
    const cur = { ...sample(), buddy: parseBuddyinfo(golden('altix', 'buddyinfo')) };
    const lines = renderFrame(summarize(undefined, cur), cur, { ...PLAIN, layout: 'grid', rows: 12 });
    assert.equal(lines.length, 12);
    assert.match(lines.at(-1)!, /^\.\.\. \d+ more lines: enlarge the window$/);
  });
});
