import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseBuddyinfo, parseMeminfo } from '../../src/uapi';
import { sh, withMount } from '../helpers/mount';

// Every mounted file through the tools people use, on a manual clock so the text holds still.

const MANUAL = ['--clock', 'manual'];
const FILES = [
  'buddyinfo', 'meminfo', 'vmstat', 'zoneinfo', 'stat', 'loadavg', 'uptime',
  'sys/vm/scrub_start', 'sys/vm/scrub_stop', 'sys/vm/scrub_load', 'sys/vm/max_prealloc_order',
];

/** Sum of 2^order × blocks over the V6 "Zeroed Pages" lines. */
function zeroedPages(buddyinfo: string): number {
  return parseBuddyinfo(buddyinfo, 'v6').reduce((s, z) => s + z.zeroed!.reduce((t, n, order) => t + n * 2 ** order, 0), 0);
}

const memZeroKb = (meminfo: string): number => parseMeminfo(meminfo).get('MemZero')!;

describe('mounted files read by real tools', () => {
  test('when each file is read by cat, head -c 7, dd bs=1 and Python then all agree byte for byte', async () => {
    await withMount(MANUAL, async (dir) => {
      const py = `import sys,json; print(json.dumps({f: open(sys.argv[1]+'/'+f).read() for f in sys.argv[2:]}))`;
      const viaPython = JSON.parse((await sh(`python3 -c ${JSON.stringify(py)} ${dir} ${FILES.join(' ')}`)).stdout) as Record<string, string>;
      for (const f of FILES) {
        const path = `${dir}/${f}`;
        const cat = (await sh(`cat ${path}`)).stdout;
        assert.ok(cat.length > 0 && cat.endsWith('\n'), `${f}: cat gives text ending in a newline`);
        assert.ok(!/\n\n/.test(cat), `${f}: no blank lines`);
        assert.equal((await sh(`dd if=${path} bs=1 status=none`)).stdout, cat, `${f}: dd bs=1`);
        assert.equal((await sh(`head -c 7 ${path}`)).stdout, cat.slice(0, 7), `${f}: head -c 7`);
        assert.equal(viaPython[f], cat, `${f}: Python open().read()`);
      }
    });
  });

  test('when scrubbing is enabled and the clock ticks then Zeroed Pages rise, MemZero grows and check stays ok', async () => {
    // MAX_ORDER 11: altix's 18 orders give kscrubd 512 MiB blocks, none done within a 250 ms tick.
    await withMount([...MANUAL, '--max-order', '11'], async (dir) => {
      const script = `
        set -e
        cd ${dir}
        echo 2 > sys/vm/scrub_stop
        echo 5 > sys/vm/scrub_start
        exec 3<>control
        for i in 1 2 3 4; do
          echo "tick 250ms" >&3; read -r r <&3
          awk '/Zeroed Pages/ { for (i = 3; i <= NF; i++) p += $i * 2^(i-3) } END { printf "%d ", p }' buddyinfo
          awk '/^MemZero:/ { printf "%d ", $2 }' meminfo
          echo "check" >&3; read -r c <&3; echo "$c"
        done`;
      const r = await sh(script);
      assert.equal(r.code, 0, r.stderr);
      const rows = r.stdout.trim().split('\n').map((l) => l.split(' '));
      assert.equal(rows.length, 4);
      for (let i = 0; i < rows.length; i++) {
        assert.equal(rows[i]![2], 'ok', `check after tick ${i + 1}`);
        // Zeroed Pages (pages) × 16 KiB = MemZero (kB): the two files agree.
        assert.equal(Number(rows[i]![0]) * 16, Number(rows[i]![1]), `buddyinfo and meminfo agree at tick ${i + 1}`);
        if (i > 0) assert.ok(Number(rows[i]![1]) > Number(rows[i - 1]![1]), `MemZero grows: ${rows.map((x) => x[1]).join(' → ')}`);
      }
      const [buddyinfo, meminfo] = [(await sh(`cat ${dir}/buddyinfo`)).stdout, (await sh(`cat ${dir}/meminfo`)).stdout];
      assert.equal(zeroedPages(buddyinfo) * 16, memZeroKb(meminfo));
    });
  });

  test('when 8 readers loop over every file while a writer changes sysctls for 10 s then every read parses', async () => {
    await withMount([], async (dir, daemon) => {
      // Each reader: open+read+close of every file in a loop; a read that fails, is empty,
      // holds a blank line or (for sysctls) is not one integer counts as bad.
      const reader = `
        import sys, time, re
        d, end = sys.argv[1], time.time() + float(sys.argv[2])
        files = sys.argv[3:]
        reads = bad = 0
        while time.time() < end:
            for f in files:
                try:
                    t = open(d + '/' + f).read()
                    ok = t.endswith('\\n') and '\\n\\n' not in t and (not f.startswith('sys/') or re.fullmatch(r'\\d+\\n', t) is not None)
                    if f == 'buddyinfo':
                        widths = {len(l.split()) for l in t.splitlines()}
                        ok = ok and len({w for w in widths}) == 2
                except OSError as e:
                    ok = False
                reads += 1; bad += 0 if ok else 1
        print(reads, bad)`.replace(/^ {8}/gm, '');
      const writer = `
        end=$(( $(date +%s) + 10 ))
        n=0
        while [ $(date +%s) -lt $end ]; do
          echo $(( n % 12 )) > ${dir}/sys/vm/scrub_start 2>/dev/null || true
          echo $(( n % 6 )) > ${dir}/sys/vm/scrub_stop
          echo $(( 100 + n )) > ${dir}/sys/vm/scrub_load
          n=$((n + 1))
        done
        echo $n`;
      const readers = Array.from({ length: 8 }, () => sh(`python3 - ${dir} 10 ${FILES.join(' ')}`, { input: reader, timeoutMs: 40_000 }));
      const [w, ...rs] = await Promise.all([sh(writer, { timeoutMs: 40_000 }), ...readers]);
      assert.equal(w.code, 0, w.stderr);
      assert.ok(Number(w.stdout.trim()) > 10, `the writer made progress: ${w.stdout}`);
      let total = 0;
      for (const r of rs) {
        assert.equal(r.code, 0, r.stderr);
        const [reads, bad] = r.stdout.trim().split(' ').map(Number);
        assert.equal(bad, 0, `malformed reads: ${r.stdout}`);
        total += reads!;
      }
      assert.ok(total > 100, `readers read ${total} files`);
      assert.doesNotMatch(daemon.stderr(), /error|EIO/i);
    });
  });
});
