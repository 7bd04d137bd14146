import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { controlBatch } from '../../src/workload/client';
import { kscrubfs, sh, withMount, withTempDir } from '../helpers/mount';
import { writeFillTrace } from '../helpers/trace';

// A machine booted with a zeroing policy, read with the tools people use.

const MANUAL = ['--clock', 'manual', '--preset', 'x86_64', '--mem', '256M'];

describe('mount --zeroing-policy', () => {
  test('when mounted with init_on_free then free memory is all zero and an exit clears what it frees', async () => {
    await withMount([...MANUAL, '--zeroing-policy', 'init_on_free'], async (dir) => {
      const kb = async (field: string): Promise<number> => Number((await sh(`awk '/^${field}:/ {print $2}' ${dir}/meminfo`)).stdout.trim());
      assert.ok(await kb('MemFree') > 0);
      assert.equal(await kb('MemZero'), await kb('MemFree'), 'the boot wipe left every free page zeroed');
      const out = await controlBatch(dir, [
        'mm new', 'mmap mm=1 size=1M addr=0x10000000000 random', 'touch mm=1 addr=0x10000000000 size=1M', 'mm exit mm=1', 'config',
      ].join('\n') + '\n');
      assert.match(out[2]!, /^ok pages=256 faults=\d+ prezeroed=256 hot_zeroed=0 /, 'no fault cleared a page');
      assert.match(out[4]!, / zeroing_policy=init_on_free boot_wipe_pages=\d+ boot_wipe_ns=\d+$/);
      const pages = Number((await sh(`awk '$1 == "init_on_free_pages" {print $2}' ${dir}/vmstat`)).stdout.trim());
      // 256 pages and the pte page (MADV_RANDOM: no prefault, one page a fault).
      assert.equal(pages, 257);
      assert.equal(await kb('MemZero') + 0, await kb('MemFree'), 'what the exit freed went back zeroed');
    });
  });

  test('when mounted with the default policy then vmstat has no policy counter and config names none', async () => {
    await withMount(MANUAL, async (dir) => {
      assert.equal((await sh(`grep -c '^init_on' ${dir}/vmstat`)).stdout.trim(), '0');
      const [config] = await controlBatch(dir, 'config\n');
      assert.doesNotMatch(config!, /zeroing_policy/);
    });
  });

  test('when the policy list names an unknown policy then mount refuses it, naming it, and mounts nothing', async () => {
    await withTempDir(async (_tmp, dir) => {
      const r = await kscrubfs(['mount', dir, '--zeroing-policy', 'init_on_free,zero_everything']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /"zero_everything" is not one of kscrubd, init_on_free, init_on_alloc/);
      assert.equal((await sh(`awk -v d=${dir} '$2 == d' /proc/mounts`)).stdout, '');
    });
  });
});

describe('kscrubfs policies', () => {
  const ARGS = ['policies', 'restart', '--mem', '256M', '--size', '16M'];

  test('when the same comparison runs twice then it prints the same bytes, one row per policy', async () => {
    const a = await kscrubfs([...ARGS, '--json']);
    const b = await kscrubfs([...ARGS, '--json']);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stdout, b.stdout);
    const out = JSON.parse(a.stdout) as { machine: { preset: string; memBytes: number }; scenario: { name: string }; rows: { policy: string; hitRate: number }[] };
    assert.equal(out.machine.preset, 'x86_64');
    assert.equal(out.machine.memBytes, 256 * 2 ** 20);
    assert.equal(out.scenario.name, 'restart');
    assert.deepEqual(out.rows.map((r) => [r.policy, r.hitRate]), [['none', 0], ['kscrubd', 1], ['init_on_alloc', 0], ['init_on_free', 1], ['prezero', 1], ['idlezero', 1]]);
  });

  test('when the table is printed then it has a header and a line per policy, read by awk', async () => {
    const r = await kscrubfs([...ARGS, '--only', 'none,init_on_free']);
    assert.equal(r.code, 0, r.stderr);
    const hit = (await sh(`awk '$1 == "init_on_free" {print $(NF-3)}'`, { input: r.stdout })).stdout.trim();
    assert.equal(hit, '100.0');
    assert.match(r.stdout, /^restart on x86_64 \(256 MiB\): 16 MiB, 1 thread\npolicy +ready ms/);
  });

  test('when a hugetlb run is told how to clear then its title says so and page at a time (the default) costs more than one extent', async () => {
    const run = async (...extra: string[]): Promise<{ title: string; none: number }> => {
      // Milan clears a 2 MiB extent faster than 512 pages one at a time (15.1 against 13.7 GB/s).
      const r = await kscrubfs(['policies', 'vm-start', '--preset', 'epyc', '--mem', '4G', '--size', '16M', '--hugetlb', '2M', '--only', 'none', ...extra]);
      assert.equal(r.code, 0, r.stderr);
      const none = Number((await sh(`awk '$1 == "none" {print $3}'`, { input: r.stdout })).stdout.trim());
      return { title: r.stdout.split('\n')[0]!, none };
    };
    const extents = await run('--huge-clear', 'extents');
    const pages = await run();
    assert.match(extents.title, /^vm-start \(hugetlb 2 MiB, cleared extents, preempt none\) on epyc/);
    assert.match(pages.title, /^vm-start \(hugetlb 2 MiB, cleared page at a time\) on epyc/);
    assert.ok(pages.none > extents.none, `app cpu ${pages.none} ms page at a time, ${extents.none} ms in extents`);
  });

  test('when the scenario, a policy or the size is wrong then it is refused with the reason and exit 2', async () => {
    for (const [args, want] of [
      [['policies', 'boot'], /value 'boot' is invalid for argument 'scenario'/],
      // (altix's MAX_ORDER 18 has order-11 blocks for its 32 MiB PMDs; i386 has no huge PMD at all.)
      [['policies', 'vm-start', '--preset', 'i386', '--size', '64M'], /thp: this machine has 4-byte ptes \(i386 without PAE\), so no PMD can map a huge page; --hugetlb 4M runs the VM on its hugetlb pages instead/],
      [['policies', 'pft', '--only', 'kscrubd,zero_everything'], /"zero_everything" is not one of none, kscrubd, init_on_alloc, init_on_free, prezero, idlezero/],
      [['policies', 'pft', '--mem', '256M', '--size', '200M'], /--size 200 MiB is more than half the machine's 256 MiB/],
      [['policies', 'pft', '--zero-drivers', 'nt,cpu'], /zero drivers: "nt" is not available on x86_64 \(the CPU lacks it or its clearing rate was never measured\)/],
      [['policies', 'pft', '--zero-drivers', 'gpu'], /"gpu" is not one of bte, clzero, nt, cpu/],
      [['policies', 'trace'], /policies trace: name the trace file/],
      [['policies', 'churn', 'x.trace'], /policies churn: takes no file \(only trace does\)/],
    ] as const) {
      const r = await kscrubfs([...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, want);
      assert.equal(r.stdout, '');
    }
  });
});

describe('kscrubfs policies: combined rows', () => {
  const ARGS = ['policies', 'restart', '--mem', '256M', '--size', '16M'];

  test('when policies are joined by + then the combination is a row beside the single ones, its machine the one mount boots with that list', async () => {
    const r = await kscrubfs([...ARGS, '--only', 'init_on_free+kscrubd,none,init_on_free', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const rows = (JSON.parse(r.stdout) as { rows: { policy: string; zeroingPolicy: string; kscrubd: string; backgroundCpuNs: number }[] }).rows;
    assert.deepEqual(rows.map((x) => [x.policy, x.kscrubd]), [['none', 'off'], ['init_on_free', 'off'], ['kscrubd+init_on_free', 'on']]);
    // A mount given the same list in the other order boots the same machine: config prints the row's list.
    await withMount([...MANUAL, '--zeroing-policy', 'init_on_free,kscrubd'], async (dir) => {
      const [config] = await controlBatch(dir, 'config\n');
      assert.equal(/ zeroing_policy=(\S+)/.exec(config!)![1], rows[2]!.zeroingPolicy);
    });
    const table = await kscrubfs([...ARGS, '--only', 'init_on_free,init_on_alloc+init_on_free']);
    assert.equal(table.code, 0, table.stderr);
    // init_on_alloc clears nothing beside init_on_free: the two rows agree column for column.
    const cols = (await sh(`awk 'NR > 2 {$1 = ""; print}'`, { input: table.stdout })).stdout.split('\n');
    assert.equal(cols[0], cols[1]);
    assert.match(table.stdout, /\ninit_on_free\+init_on_alloc +\d/);
  });

  test('when a combined row is drawn then the chart has its bar in every panel', async () => {
    await withTempDir(async (tmp) => {
      const svg = `${tmp}/c.svg`;
      const r = await kscrubfs(['policies', 'vm-start', '--mem', '256M', '--size', '8M', '--hugetlb', '2M', '--only', 'none,init_on_free+khzerod', '--svg', svg]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await sh(`grep -c '<rect class="bar" data-policy="init_on_free+khzerod"' ${svg}`)).stdout, '10\n');
    });
  });

  test('when a row of the list is bad then the whole list is refused with the reason, exit 2, and nothing runs', async () => {
    for (const [only, want, extra] of [
      ['none,kscrubd+prezero', /"kscrubd\+prezero": kscrubd keeps zeroed blocks apart, prezero keeps the zero flag on the block/, []],
      ['prezero+idlezero', /"prezero\+idlezero": prezero and idlezero are two kernels' answers/, []],
      ['none+kscrubd', /"none\+kscrubd": none is no policy at all, it combines with nothing/, []],
      ['init_on_free+zero_everything', /"init_on_free\+zero_everything": "zero_everything" is not one of kscrubd, init_on_free/, []],
      ['init_on_free+init_on_free', /"init_on_free\+init_on_free" names a policy twice/, []],
      ['kscrubd+init_on_free,init_on_free+kscrubd', /names the combination kscrubd\+init_on_free twice/, []],
      ['kscrubd+', /"kscrubd\+" has an empty name between its \+s/, []],
      ['none,init_on_free+khzerod', /--only "init_on_free\+khzerod": khzerod pre-zeroes hugetlb pages, which only a --hugetlb comparison has/, []],
      ['none,kscrubd+init_on_free', /--only "kscrubd\+init_on_free" is not a hugetlb policy \(none, khzerod, zeroable_hugepages, or a combination with khzerod or zeroable_hugepages\)/, ['--hugetlb', '2M']],
    ] as const) {
      const r = await kscrubfs(['policies', 'vm-start', '--mem', '256M', '--size', '8M', '--only', only, ...extra]);
      assert.equal(r.code, 2, `${only}: ${r.stderr}`);
      assert.match(r.stderr, want);
      assert.equal(r.stdout, '');
    }
  });
});

describe('kscrubfs policies trace', () => {
  test('when a trace runs on a machine smaller than twice the default --size then it runs: a trace brings its own footprint', async () => {
    await withTempDir(async (tmp) => {
      const file = `${tmp}/p.trace`;
      writeFillTrace(file, 64);
      // i386 has 384 MiB: the default --size (256 MiB) is more than half of it.
      const r = await kscrubfs(['policies', 'trace', file, '--preset', 'i386', '--only', 'none,kscrubd']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^trace on i386 \(384 MiB\)\npolicy /);
      const hit = (await sh(`awk '$1 == "none" || $1 == "kscrubd" {print $1, $(NF-3)}'`, { input: r.stdout })).stdout;
      assert.equal(hit, 'none 0.0\nkscrubd 100.0\n');
    });
  });
});

describe('kscrubfs policies --svg', () => {
  test('when the churn is drawn then the file has a panel per column and a bar per policy, read by grep', async () => {
    await withTempDir(async (tmp) => {
      const svg = `${tmp}/churn.svg`;
      const r = await kscrubfs(['policies', 'churn', '--mem', '256M', '--size', '4M', '--only', 'none,prezero', '--svg', svg]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^churn on x86_64 \(256 MiB\): 4 MiB, 1 thread\n/);
      assert.equal((await sh(`grep -c '<g class="panel"' ${svg}`)).stdout, '10\n');
      assert.equal((await sh(`grep -c '<rect class="bar" data-policy="prezero"' ${svg}`)).stdout, '10\n');
      const bad = await kscrubfs(['policies', 'churn', '--mem', '256M', '--size', '4M', '--svg', `${tmp}/no/such/dir/x.svg`]);
      assert.equal(bad.code, 1, 'an output that cannot be written is exit 1, as for every result file');
      assert.match(bad.stderr, /--svg: cannot write/);
    });
  });
});

describe('the pool\'s and the idle zeroer\'s files', () => {
  const PREZERO = ['enabled', 'min_order', 'max_percent', 'batch_pages', 'sleep_msecs'];

  test('when mounted with prezero then sys/kernel/mm/prezero reads Anolis\'s defaults, 0644, and a bad echo is EINVAL with the value kept', async () => {
    await withMount([...MANUAL, '--zeroing-policy', 'prezero'], async (dir) => {
      const p = `${dir}/sys/kernel/mm/prezero`;
      assert.equal((await sh(`cd ${p} && for f in ${PREZERO.join(' ')}; do printf '%s=' $f; cat $f; done`)).stdout, 'enabled=1\nmin_order=9\nmax_percent=50\nbatch_pages=4096\nsleep_msecs=1000\n');
      assert.equal((await sh(`stat -c '%a %s' ${p}/min_order ${dir}/sys/vm/max_prealloc_order`)).stdout, '644 0\n644 0\n');
      for (const bad of ['11', '-1', "' 5'", '5x', 'abc']) {
        const r = await sh(`/bin/echo ${bad} > ${p}/min_order`); // coreutils echo names the errno (dash's says I/O error)
        assert.notEqual(r.code, 0, bad);
        assert.match(r.stderr, /Invalid argument/, bad);
      }
      assert.equal((await sh(`cat ${p}/min_order`)).stdout, '9\n');
      // kstrtoul base 0 and a trailing newline; printf writes none.
      await sh(`echo 0x8 > ${p}/min_order && printf 25 > ${p}/max_percent`);
      assert.equal((await sh(`cat ${p}/min_order ${p}/max_percent`)).stdout, '8\n25\n');
      // This kernel has the pool, not the idle zeroer nor kscrubd: their files are not there.
      assert.equal((await sh(`ls ${dir}/sys/vm`)).stdout, 'max_prealloc_order\nnr_hugepages\n');
      const r = await sh(`/bin/echo 1 > ${dir}/sys/vm/idlezero_enable`);
      assert.match(r.stderr, /Directory nonexistent/, "dash names ENOENT on a create so: the file is not there to write");
      assert.match((await sh(`cat ${dir}/sys/vm/idlezero_enable`)).stderr, /No such file or directory/);
      // kprezerod wakes on the clock: after 2 s the pool holds pages, and meminfo says so.
      await controlBatch(dir, 'tick 2s\n');
      const zero = Number((await sh(`awk '/^MemZero:/ {print $2}' ${dir}/meminfo`)).stdout.trim());
      assert.ok(zero >= 4096 * 4, `MemZero ${zero} kB: at least one batch of 4096 pages`);
    });
  });

  test('when mounted with idlezero then vm.idlezero_* read FreeBSD\'s defaults and the boot leaves 4/5 of free memory zeroed', async () => {
    await withMount([...MANUAL, '--zeroing-policy', 'idlezero'], async (dir) => {
      assert.equal((await sh(`cat ${dir}/sys/vm/idlezero_enable ${dir}/sys/vm/idlezero_maxrun`)).stdout, '1\n16\n');
      await controlBatch(dir, 'tick 1s\n');
      const kb = async (field: string): Promise<number> => Number((await sh(`awk '/^${field}:/ {print $2}' ${dir}/meminfo`)).stdout.trim());
      const [free, zero] = [await kb('MemFree'), await kb('MemZero')];
      assert.ok(zero >= Math.floor((free * 4) / 5) - 4 * 1024 && zero < free, `MemZero ${zero} of MemFree ${free}`);
      const r = await sh(`/bin/echo 0 > ${dir}/sys/vm/idlezero_maxrun`);
      assert.match(r.stderr, /Invalid argument/);
      assert.equal((await sh(`cat ${dir}/sys/vm/idlezero_maxrun`)).stdout, '16\n');
    });
  });
});

describe('a file exists where its kernel or a mounted policy has it', () => {
  const gone = async (file: string): Promise<void> => {
    const r = await sh(`cat ${file}`);
    assert.notEqual(r.code, 0, file);
    assert.match(r.stderr, /No such file or directory/, file);
  };

  test('when the altix mounts as it booted in 2005 then sys has kscrubd\'s, prefault\'s and 2.6.11\'s hugetlb sysctls and nothing later', async () => {
    await withMount(['--clock', 'manual'], async (dir) => {
      assert.equal((await sh(`ls ${dir}/sys`)).stdout, 'vm\n');
      assert.equal((await sh(`ls ${dir}/sys/vm`)).stdout, 'max_prealloc_order\nnr_hugepages\nscrub_load\nscrub_start\nscrub_stop\n');
      assert.equal((await sh(`cat ${dir}/sys/vm/nr_hugepages ${dir}/sys/vm/scrub_stop`)).stdout, '0\n4\n');
      for (const f of ['sys/vm/nr_overcommit_hugepages', 'sys/vm/idlezero_enable', 'sys/kernel/mm/prezero/enabled', 'sys/kernel/mm/hugepages/hugepages-262144kB/nr_hugepages']) await gone(`${dir}/${f}`);
    });
  });

  test('when the altix mounts with idlezero and khzerod then their files are there, and kscrubd\'s are not', async () => {
    await withMount(['--clock', 'manual', '--zeroing-policy', 'idlezero,khzerod'], async (dir) => {
      assert.equal((await sh(`ls ${dir}/sys/vm`)).stdout, 'idlezero_enable\nidlezero_maxrun\nmax_prealloc_order\nnr_hugepages\n');
      assert.equal((await sh(`cat ${dir}/sys/vm/idlezero_enable ${dir}/sys/vm/idlezero_maxrun`)).stdout, '1\n16\n');
      // The proposal's two files, without the hstate directory 2.6.11 does not have.
      const size = `${dir}/sys/kernel/mm/hugepages/hugepages-262144kB`;
      assert.equal((await sh(`ls ${size}`)).stdout, 'free_huge_pages_zero\nprezero_enabled\n');
      assert.equal((await sh(`cat ${size}/prezero_enabled ${size}/free_huge_pages_zero`)).stdout, '0\n0\n');
      await gone(`${dir}/sys/vm/scrub_start`);
    });
  });

  test('when a machine of today mounts then it has the later hugetlb files, and the proposals\' only with their policies', async () => {
    const today = ['--clock', 'manual', '--preset', 'epyc', '--nodes', '2', '--cpus', '4', '--mem', '2G'];
    await withMount(today, async (dir) => {
      // (and 6.18's watermark sysctls: src/model/watermarks.ts)
      assert.equal((await sh(`ls ${dir}/sys/vm`)).stdout, 'max_prealloc_order\nmin_free_kbytes\nnr_hugepages\nnr_overcommit_hugepages\nscrub_load\nscrub_start\nscrub_stop\nwatermark_boost_factor\nwatermark_scale_factor\n');
      assert.equal((await sh(`ls ${dir}/sys/kernel/mm/hugepages/hugepages-2048kB`)).stdout, 'free_hugepages\nnr_hugepages\nnr_overcommit_hugepages\nresv_hugepages\nsurplus_hugepages\n');
      assert.equal((await sh(`ls ${dir}/sys/devices/system/node/node1/hugepages/hugepages-2048kB`)).stdout, 'free_hugepages\nnr_hugepages\nsurplus_hugepages\n');
      assert.equal((await sh(`cat ${dir}/sys/vm/nr_overcommit_hugepages`)).stdout, '0\n');
      await gone(`${dir}/sys/kernel/mm/hugepages/hugepages-2048kB/prezero_enabled`);
    });
    await withMount([...today, '--zeroing-policy', 'kscrubd,zeroable_hugepages'], async (dir) => {
      assert.equal((await sh(`cat ${dir}/sys/devices/system/node/node1/hugepages/hugepages-2048kB/zeroable_hugepages`)).stdout, '0\n');
      await gone(`${dir}/sys/kernel/mm/hugepages/hugepages-2048kB/free_huge_pages_zero`);
    });
  });
});
