import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { pollUntil } from '../../src/daemon/poll';
import { alloc, withMount } from '../helpers/mount';
import { meminfo, parseBuddyinfo, readModel, requireTool, startService, WITH_PROCFS } from './tools';

// collectd (Debian collectd-core) hard-codes /proc/buddyinfo and /proc/meminfo: it runs in
// the foreground under scripts/with-procfs, writing CSV into a temporary directory.
// The x86_64 preset (4 KiB pages, as collectd assumes when it names buddyinfo's orders in KB).
const COLLECTD = '/usr/sbin/collectd';
const HOST = 'kscrubfs';
const FIRST_VALUES_MS = 15_000;
const FOLLOW_MS = 10_000;

function config(tmp: string): string {
  return `Hostname "${HOST}"
FQDNLookup false
BaseDir "${tmp}"
PIDFile "${tmp}/collectd.pid"
TypesDB "/usr/share/collectd/types.db"
Interval 1
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File STDERR
  Timestamp false
</Plugin>
LoadPlugin buddyinfo
LoadPlugin memory
LoadPlugin csv
<Plugin csv>
  DataDir "${tmp}/csv"
  StoreRates false
</Plugin>
`;
}

/**
 * The newest value collectd wrote for `plugin/type` (csv: one file per day, `epoch,value`
 * rows), or undefined before the first row.
 */
async function lastValue(csv: string, plugin: string, type: string): Promise<number | undefined> {
  const dir = path.join(csv, HOST, plugin);
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.startsWith(`${type}-`)).sort();
  const newest = files.at(-1);
  if (!newest) return undefined;
  const rows = (await readFile(path.join(dir, newest), 'utf8')).trim().split('\n').slice(1);
  const value = rows.at(-1)?.split(',')[1];
  return value === undefined ? undefined : Number(value);
}

/** collectd's buddyinfo type instance for `order`: the block size in KB with 4 KiB pages. */
function freepages(order: number): string {
  return `freepages-${4 * 2 ** order}KB`;
}

describe('collectd buddyinfo and memory plugins through with-procfs', () => {
  test('when collectd reads the model then its CSV has the model\'s MemFree and buddyinfo counts, and they follow an alloc', async () => {
    requireTool(COLLECTD, 'collectd-core');
    await withMount(['--preset', 'x86_64', '--clock', 'manual', '--buddyinfo', 'stock'], async (dir) => {
      const tmp = await mkdtemp(path.join(os.tmpdir(), 'kscrubfs-collectd-'));
      const csv = path.join(tmp, 'csv');
      await writeFile(path.join(tmp, 'collectd.conf'), config(tmp));
      const collectd = startService(WITH_PROCFS, ['--mount', dir, '--', COLLECTD, '-f', '-C', path.join(tmp, 'collectd.conf')]);
      try {
        /** Wait until collectd's newest values are `want` (or it exits); the last values seen. */
        const follow = async (want: Record<string, number>, timeoutMs: number): Promise<Record<string, number | undefined>> => {
          let seen: Record<string, number | undefined> = {};
          await pollUntil(async () => {
            if (collectd.hasExited()) return false;
            seen = {};
            for (const key of Object.keys(want)) {
              const [plugin, type] = key.split('/');
              seen[key] = await lastValue(csv, plugin!, type!);
            }
            return Object.keys(want).every((k) => seen[k] === want[k]) ? true : undefined;
          }, { timeoutMs, intervalMs: 200 });
          return seen;
        };

        const mem = await meminfo(dir);
        const buddy = parseBuddyinfo(await readModel(dir, 'buddyinfo'));
        const dma32 = buddy.get('0 DMA32');
        assert.ok(dma32, 'the x86_64 preset has a DMA32 zone');
        // collectd's memory plugin: used = MemTotal − (MemFree + Buffers + Cached + Slab).
        const used = (mem.MemTotal! - mem.MemFree! - mem.Buffers! - mem.Cached! - mem.Slab!) * 1024;
        const want1 = {
          'memory/memory-free': mem.MemFree! * 1024,
          'memory/memory-used': used,
          [`buddyinfo-Node0_DMA32/${freepages(10)}`]: dma32[10]!,
          [`buddyinfo-Node0_DMA32/${freepages(0)}`]: dma32[0]!,
          [`buddyinfo-Node0_DMA/${freepages(10)}`]: buddy.get('0 DMA')![10]!,
        };
        const seen1 = await follow(want1, FIRST_VALUES_MS);
        assert.deepEqual(seen1, want1, `collectd's first values\n--- collectd ---\n${collectd.output()}`);

        // Ten order-10 blocks (4 MiB each with 4 KiB pages) from node 0: DMA32 serves them.
        await alloc(dir, 'order=10 count=10');
        const after = await meminfo(dir);
        assert.equal(mem.MemFree! - after.MemFree!, 10 * 1024 * 4);
        const want2 = {
          'memory/memory-free': after.MemFree! * 1024,
          [`buddyinfo-Node0_DMA32/${freepages(10)}`]: dma32[10]! - 10,
        };
        const seen2 = await follow(want2, FOLLOW_MS);
        assert.deepEqual(seen2, want2, `collectd's values after the alloc\n--- collectd ---\n${collectd.output()}`);
        assert.ok(!collectd.hasExited(), collectd.output());
      } finally {
        await collectd.stop();
        await rm(tmp, { recursive: true, force: true });
      }
    });
  });
});
