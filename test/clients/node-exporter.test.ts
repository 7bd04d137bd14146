import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { pollUntil } from '../../src/daemon/poll';
import { alloc, control, kscrubfs, sysctl, withMount } from '../helpers/mount';
import { freePort, meminfo, parseBuddyinfo, readModel, requireTool, startService, type Service } from './tools';

// Debian's prometheus-node-exporter (1.5.0 on bookworm) with --path.procfs=<mount>: no
// namespace needed. Its own port on 127.0.0.1 (a system exporter may hold :9100).
const EXPORTER = '/usr/bin/prometheus-node-exporter';
const COLLECTORS = ['meminfo', 'vmstat', 'loadavg', 'stat', 'zoneinfo', 'buddyinfo', 'sysctl', 'cpu'];
const SYSCTLS = ['vm.scrub_start', 'vm.scrub_stop', 'vm.scrub_load', 'vm.max_prealloc_order'];
const READY_MS = 10_000;
const SCRAPE_MS = 5_000;

/** The flags the README documents, on `port`. */
function exporterArgs(dir: string, port: number): string[] {
  return [
    `--path.procfs=${dir}`,
    '--collector.disable-defaults',
    ...COLLECTORS.map((c) => `--collector.${c}`),
    ...SYSCTLS.map((s) => `--collector.sysctl.include=${s}`),
    // The default keeps oom_kill|pgpg|pswp|pg.*fault: add the model's kscrubd counters.
    '--collector.vmstat.fields=^(oom_kill|pgpg|pswp|pg.*fault|kscrubd_|nr_zero_pages|pgalloc_).*',
    `--web.listen-address=127.0.0.1:${port}`,
  ];
}

type Metrics = Map<string, number>;

/** The text exposition format → `name{labels}` (as printed) → value. */
function parseMetrics(text: string): Metrics {
  const metrics: Metrics = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    metrics.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return metrics;
}

function metric(metrics: Metrics, key: string): number {
  const value = metrics.get(key);
  assert.ok(value !== undefined, `${key} is not in /metrics`);
  return value;
}

interface Exporter {
  scrape(): Promise<Metrics>;
}

/**
 * Start the exporter on a free port (a second try if the port went in between), wait until
 * /metrics answers, run `fn`, and always stop it.
 */
async function withExporter(dir: string, fn: (exporter: Exporter) => Promise<void>, argsFor = (port: number) => exporterArgs(dir, port)): Promise<void> {
  requireTool(EXPORTER, 'prometheus-node-exporter');
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/metrics`;
    const service: Service = startService(EXPORTER, argsFor(port));
    try {
      const scrape = async (): Promise<Metrics> => {
        const res = await fetch(url, { signal: AbortSignal.timeout(SCRAPE_MS) });
        assert.equal(res.status, 200);
        return parseMetrics(await res.text());
      };
      const ready = await pollUntil(async () => {
        if (service.hasExited()) return 'exited';
        try {
          const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
          await res.arrayBuffer();
          return res.ok ? 'ready' : undefined;
        } catch {
          return undefined;
        }
      }, { timeoutMs: READY_MS, intervalMs: 100 });
      if (ready === 'exited' && attempt < 2 && /address already in use/.test(service.output())) continue;
      assert.equal(ready, 'ready', `node_exporter did not serve ${url} within ${READY_MS} ms:\n${service.output()}`);
      await fn({ scrape });
      return;
    } catch (err) {
      if (err instanceof Error) err.message += `\n--- node_exporter output ---\n${service.output()}`;
      throw err;
    } finally {
      await service.stop();
    }
  }
}

describe('prometheus node_exporter with --path.procfs on the mount', () => {
  test('when /metrics is scraped then every collector succeeds and carries the model\'s values, and they follow alloc and kscrubd', async () => {
    // MAX_ORDER 11 (not altix's 18): order 10 is the top order, whole sections, so ten order-10
    // blocks take ten of node 0's top-order count.
    await withMount(['--clock', 'manual', '--buddyinfo', 'stock', '--zero-drivers', 'cpu', '--max-order', '11'], async (dir) => {
      await withExporter(dir, async (exporter) => {
        const m1 = await exporter.scrape();
        for (const c of COLLECTORS) assert.equal(metric(m1, `node_scrape_collector_success{collector="${c}"}`), 1, `collector ${c}`);

        const mem = await meminfo(dir);
        assert.equal(metric(m1, 'node_memory_MemTotal_bytes'), mem.MemTotal! * 1024);
        assert.equal(metric(m1, 'node_memory_MemFree_bytes'), mem.MemFree! * 1024);
        assert.equal(metric(m1, 'node_memory_MemZero_bytes'), 0, 'the patch\'s MemZero, as any meminfo field');
        const buddy = parseBuddyinfo(await readModel(dir, 'buddyinfo'));
        for (const [zone, counts] of buddy) {
          const [node, name] = zone.split(' ');
          counts.forEach((count, order) => {
            assert.equal(metric(m1, `node_buddyinfo_blocks{node="${node}",size="${order}",zone="${name}"}`), count, `${zone} order ${order}`);
          });
        }
        const zoneFree = [...(await readModel(dir, 'zoneinfo')).matchAll(/^Node (\d+), zone +(\S+)[\s\S]*?^ {2}pages free +(\d+)$/gm)];
        assert.equal(zoneFree.length, buddy.size);
        for (const [, node, zone, free] of zoneFree) {
          assert.equal(metric(m1, `node_zoneinfo_nr_free_pages{node="${node}",zone="${zone}"}`), Number(free));
        }
        assert.deepEqual(
          SYSCTLS.map((s) => metric(m1, `node_sysctl_${s.replace('.', '_')}`)),
          [11, 4, 999, 4],
          'scrub_start (off = MAX_ORDER), scrub_stop, scrub_load, max_prealloc_order',
        );
        assert.equal(metric(m1, 'node_load1'), Number((await readModel(dir, 'loadavg')).split(' ')[0]));
        assert.equal(metric(m1, 'node_boot_time_seconds'), Number(/^btime (\d+)$/m.exec(await readModel(dir, 'stat'))?.[1]));

        // Ten order-10 blocks of node 0: MemFree and node 0's top-order count drop.
        await alloc(dir, 'order=10 node=0 count=10');
        const m2 = await exporter.scrape();
        assert.equal(metric(m1, 'node_memory_MemFree_bytes') - metric(m2, 'node_memory_MemFree_bytes'), 10 * 1024 * 16384);
        const top0 = 'node_buddyinfo_blocks{node="0",size="10",zone="DMA"}';
        assert.equal(metric(m1, top0) - metric(m2, top0), 10);

        // kscrubd on: the sysctls, MemZero, its vmstat counters and system CPU time follow.
        await sysctl(dir, 'scrub_stop', 0);
        await sysctl(dir, 'scrub_start', 1);
        await control(dir, 'tick 2s');
        const m3 = await exporter.scrape();
        assert.equal(metric(m3, 'node_sysctl_vm_scrub_start'), 1);
        assert.equal(metric(m3, 'node_sysctl_vm_scrub_stop'), 0);
        assert.equal(metric(m3, 'node_memory_MemZero_bytes'), (await meminfo(dir)).MemZero! * 1024);
        assert.ok(metric(m3, 'node_memory_MemZero_bytes') > 0);
        assert.ok(metric(m3, 'node_vmstat_kscrubd_pages') > 0);
        const system = [...m3].filter(([k]) => /^node_cpu_seconds_total\{cpu="\d+",mode="system"\}$/.test(k)).reduce((sum, [, v]) => sum + v, 0);
        const sysTicks = Number(/^cpu +\d+ \d+ (\d+)/.exec(await readModel(dir, 'stat'))?.[1]);
        assert.ok(system > 0, 'kscrubd time is system time');
        assert.ok(Math.abs(system - sysTicks / 100) <= 0.08, `node_cpu system ${system} s, stat ${sysTicks} ticks`);
        for (const c of COLLECTORS) assert.equal(metric(m3, `node_scrape_collector_success{collector="${c}"}`), 1, `collector ${c}`);
      });
    });
  });

  test('when buddyinfo is the patch\'s v6 format then node_exporter\'s buddyinfo collector fails (mount with --buddyinfo stock)', async () => {
    await withMount(['--clock', 'manual'], async (dir) => {
      await withExporter(dir, async (exporter) => {
        const m = await exporter.scrape();
        // "mismatch in number of buddyinfo buckets": it reads the "Zeroed Pages" line as a zone.
        assert.equal(metric(m, 'node_scrape_collector_success{collector="buddyinfo"}'), 0);
        assert.equal(metric(m, 'node_scrape_collector_success{collector="meminfo"}'), 1);
      });
    });
  });

  test('when kscrubfs watch --textfile writes the V6 split then node_exporter\'s textfile collector serves every zone, order and class, and kscrubd\'s counters', async () => {
    const textDir = mkdtempSync(path.join(os.tmpdir(), 'kscrubfs-textfile-'));
    try {
      await withMount(['--clock', 'manual', '--zero-drivers', 'cpu'], async (dir) => {
        await sysctl(dir, 'scrub_stop', 0);
        await sysctl(dir, 'scrub_start', 5);
        await control(dir, 'tick 1s');
        const w = await kscrubfs(['watch', dir, '--once', '--textfile', textDir]);
        assert.equal(w.code, 0, w.stderr);
        const args = (port: number): string[] => [
          '--collector.disable-defaults', '--collector.textfile', `--collector.textfile.directory=${textDir}`, `--web.listen-address=127.0.0.1:${port}`,
        ];
        await withExporter(dir, async (exporter) => {
          const m = await exporter.scrape();
          assert.equal(metric(m, 'node_textfile_scrape_error'), 0);
          const text = await readModel(dir, 'buddyinfo');
          const lines = text.trimEnd().split('\n');
          let zones = 0;
          for (let i = 0; i < lines.length; i += 2) {
            const [, node, zone, rest] = /^Node (\d+), zone +(\S+)(.*)$/.exec(lines[i]!)!;
            const notZeroed = rest!.trim().split(/\s+/).map(Number);
            const zeroed = lines[i + 1]!.replace('Zeroed Pages', '').trim().split(/\s+/).map(Number);
            notZeroed.forEach((n, order) => {
              const at = `node="${node}",order="${order}",zone="${zone}"`;
              assert.equal(metric(m, `kscrubfs_free_blocks{class="not_zeroed",${at}}`), n, `${zone} ${node} order ${order}`);
              assert.equal(metric(m, `kscrubfs_free_blocks{class="zeroed",${at}}`), zeroed[order], `${zone} ${node} order ${order} zeroed`);
            });
            zones++;
          }
          assert.equal(zones, 4);
          assert.ok(metric(m, 'kscrubfs_kscrubd_pages_total') > 0);
          assert.ok(metric(m, 'kscrubfs_kscrubd_cpu_seconds_total') > 0);
          assert.equal(metric(m, 'kscrubfs_memory_zero_bytes'), (await meminfo(dir)).MemZero! * 1024);
          assert.equal(metric(m, 'kscrubfs_sysctl_vm_scrub_start'), 5);
        }, args);
      });
    } finally {
      rmSync(textDir, { recursive: true, force: true });
    }
  });
});
