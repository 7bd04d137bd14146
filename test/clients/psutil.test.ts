import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseVmstat } from '../../src/uapi';
import { alloc, control, run, sysctl, withMount } from '../helpers/mount';
import { DEBIAN_PYTHON, meminfo, parseStatCpu, readModel, requireTool } from './tools';

// psutil (Debian python3-psutil) reads the model with psutil.PROCFS_PATH = <mount>: no
// namespace needed. /usr/bin/python3, because psutil is installed for Debian's python.
const MANUAL = ['--clock', 'manual'];

interface Sample {
  vm: { total: number; available: number; free: number; used: number; percent: number };
  cpu: { user: number; system: number; idle: number };
  percpu: number;
}

const SCRIPT = `
import json, sys, warnings
warnings.simplefilter('error')  # a field psutil misses in our meminfo warns: make it fail
import psutil
psutil.PROCFS_PATH = sys.argv[1]
vm = psutil.virtual_memory()
cpu = psutil.cpu_times()
print(json.dumps({'vm': vm._asdict(), 'cpu': cpu._asdict(), 'percpu': len(psutil.cpu_times(percpu=True))}))
`;

async function sample(dir: string): Promise<Sample> {
  const r = await run(DEBIAN_PYTHON, ['-c', SCRIPT, dir]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Sample;
}

describe('psutil with PROCFS_PATH on the mount', () => {
  test('when virtual_memory() is asked then total, free and available are the model\'s, and free follows an alloc', async () => {
    requireTool(DEBIAN_PYTHON, 'python3');
    await withMount(MANUAL, async (dir) => {
      const m = await meminfo(dir);
      const s1 = await sample(dir);
      assert.equal(s1.vm.total, m.MemTotal! * 1024);
      assert.equal(s1.vm.free, m.MemFree! * 1024);
      assert.equal(s1.vm.available, m.MemAvailable! * 1024);

      // 20 blocks of order 10 on node 1 (altix: 16 KiB pages): 320 MiB.
      const handles = await alloc(dir, 'order=10 node=1 count=20');
      const s2 = await sample(dir);
      assert.equal(s1.vm.free - s2.vm.free, 20 * 1024 * 16384);
      assert.equal(s1.vm.available - s2.vm.available, 20 * 1024 * 16384);
      assert.ok(s2.vm.percent > s1.vm.percent, `percent ${s1.vm.percent} → ${s2.vm.percent}`);

      await control(dir, `free handles=${handles}`);
      assert.equal((await sample(dir)).vm.free, s1.vm.free);
    });
  });

  test('when kscrubd zeroes with the CPU then cpu_times().system grows by its time, as stat says', async () => {
    requireTool(DEBIAN_PYTHON, 'python3');
    await withMount([...MANUAL, '--zero-drivers', 'cpu'], async (dir) => {
      await control(dir, 'tick 1s');
      const s1 = await sample(dir);
      assert.equal(s1.percpu, 8, 'the altix preset has 8 CPUs');
      assert.deepEqual([s1.cpu.user, s1.cpu.system], [0, 0]);
      assert.equal(s1.cpu.idle, 8, 'eight idle CPUs for one second');

      await sysctl(dir, 'scrub_stop', 0);
      await sysctl(dir, 'scrub_start', 1);
      await control(dir, 'tick 2s');
      const stat = parseStatCpu(await readModel(dir, 'stat'));
      const s2 = await sample(dir);
      assert.ok(stat.system > 0, 'kscrubd put system time in stat');
      assert.equal(s2.cpu.system, stat.system / 100);
      assert.equal(s2.cpu.idle, stat.idle / 100);
      // Three seconds on eight CPUs, to the tick.
      assert.ok(Math.abs(s2.cpu.system + s2.cpu.idle + s2.cpu.user - 24) <= 0.02, JSON.stringify(s2.cpu));
      const kscrubdUs = parseVmstat(await readModel(dir, 'vmstat')).get('kscrubd_cpu_us')!;
      assert.ok(Math.abs(s2.cpu.system - kscrubdUs / 1e6) <= 0.08, `system ${s2.cpu.system} s, kscrubd ${kscrubdUs} µs`);
    });
  });
});
