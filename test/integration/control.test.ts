import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { q, run, sh, withMount, type RunResult } from '../helpers/mount';

// /control over the real mount, driven by bash, cat, head and dd as a user would. The daemon
// runs with a manual clock so every result line is predictable.
const MANUAL = ['--clock', 'manual'];

function bash(script: string): Promise<RunResult> {
  return run('bash', ['-c', script]);
}

/** Mount a manual-clock machine and hand over its control file (which must be served). */
async function withControl(fn: (dir: string, control: string) => Promise<void>): Promise<void> {
  await withMount(MANUAL, async (dir) => {
    const control = path.join(dir, 'control');
    assert.ok(existsSync(control), 'the daemon serves /control');
    await fn(dir, control);
  });
}

describe('control over the mount', () => {
  test('when control is cat without a write then it prints the help, and its mode is 0600', async () => {
    await withControl(async (_dir, control) => {
      const cat = await sh(`cat ${q(control)}`);
      assert.equal(cat.code, 0, cat.stderr);
      assert.match(cat.stdout, /^kscrubfs control: /);
      assert.match(cat.stdout, /\n {2}alloc order=<n> \[node=<n>\] \[count=<n>\] \[zero\]\n/);
      const mode = await sh(`stat -c %a ${q(control)}`);
      assert.equal(mode.stdout.trim(), '600');
    });
  });

  test("when bash writes a batch and reads it back with read (which seeks back over its read-ahead) then every line arrives", async () => {
    await withControl(async (_dir, control) => {
      const r = await bash(`exec 3<>${q(control)}
        printf 'alloc order=10 count=2\\n# a comment\\ncheck\\ntick 1500ms\\nfree handles=1,2\\n' >&3 || exit 9
        while read -r line <&3; do echo "$line"; done`);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.split('\n').slice(0, -1), ['ok handles=1,2', 'ok', 'ok now_ns=1500000000', 'ok freed_pages=2048']);
    });
  });

  test('when head -n1 reads one result at a time then it gets each line once, in order', async () => {
    await withControl(async (_dir, control) => {
      const r = await bash(`exec 3<>${q(control)}
        printf 'tick 1s\\ntick 2s\\ntick 3s\\n' >&3
        head -n1 <&3; head -n1 <&3; head -n1 <&3; head -n1 <&3`);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'ok now_ns=1000000000\nok now_ns=3000000000\nok now_ns=6000000000\n');
    });
  });

  test('when results are read with dd in 7-byte blocks then they arrive whole', async () => {
    await withControl(async (_dir, control) => {
      const r = await bash(`exec 3<>${q(control)}
        printf 'alloc order=0 count=5\\nstats\\ncheck\\n' >&3
        dd bs=7 status=none <&3`);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.split('\n');
      assert.equal(lines[0], 'ok handles=1,2,3,4,5');
      assert.match(lines[1]!, /^ok now_ns=0 page_size=16384 max_order=18 nodes=4 cpus=8 raw_pages=5 mms=0 kscrubd_awake=0 .* nr_free_pages=\d+ /);
      assert.deepEqual(lines.slice(2), ['ok', '']);
    });
  });

  test('when one write(2) has a bad line then it fails with Invalid argument, nothing runs, and the err lines are readable', async () => {
    await withControl(async (_dir, control) => {
      // bash's printf and echo builtins write line by line (one batch each): cat writes the whole batch at once.
      const r = await bash(`exec 3<>${q(control)}
        printf 'alloc order=1\\nalloc ordr=1\\n' | cat >&3 && exit 9
        cat <&3
        echo stats >&3; read -r s <&3; echo "$s"`);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /Invalid argument/);
      const lines = r.stdout.split('\n');
      assert.deepEqual(lines.slice(0, 2), [
        'err skipped: line 2 of this write was rejected',
        'err alloc: unknown key "ordr" (keys: order, node, count; flags: zero)',
      ]);
      assert.match(lines[2]!, / raw_pages=0 /, 'the good alloc did not run');
    });
  });

  test("when echo sends one command per open then a line that does not parse fails its write, and a command that fails as it runs fails the writer's close", async () => {
    await withControl(async (_dir, control) => {
      assert.equal((await bash(`echo 'alloc order=2' > ${q(control)}`)).code, 0);
      const bad = await bash(`echo 'alloc ordr=2' > ${q(control)}`);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /write error: Invalid argument/);
      // free of an unknown handle parses, and fails as it runs: cat's close says so (bash
      // ignores a failed close, so its own echo cannot).
      const failed = await bash(`echo 'free handles=99' | cat > ${q(control)}`);
      assert.notEqual(failed.code, 0);
      assert.match(failed.stderr, /cat: write error: Invalid argument/);
      const again = await bash(`echo 'free handles=1' | cat > ${q(control)} && echo 'free handles=1' | cat > ${q(control)}`);
      assert.notEqual(again.code, 0, 'the second free of handle 1 fails');
      // A close waits for the command its process wrote: what runs next sees it done.
      const seen = await bash(`echo 'alloc order=3 count=2' > ${q(control)}; exec 3<>${q(control)}; echo stats >&3; read -r s <&3; echo "$s"`);
      assert.match(seen.stdout, / raw_pages=16 /, 'the alloc of two order-3 blocks ran before the next command was written');
    });
  });

  test('when a shell script runs a process (mm new, mmap, touch, mm exit) then it can parse each result', async () => {
    await withControl(async (_dir, control) => {
      const r = await bash(`exec 3<>${q(control)}
        echo 'mm new' >&3; read -r ok mm <&3; id=\${mm#mm=}
        echo "mmap mm=$id size=1M" >&3; read -r ok addr size <&3; addr=\${addr#addr=}
        echo "touch mm=$id addr=$addr size=1M" >&3; read -r touched <&3
        echo "mm exit mm=$id" >&3; read -r exited <&3
        echo check >&3; read -r checked <&3
        echo "$size|$touched|$exited|$checked"`);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^size=1048576\|ok pages=64 faults=\d+ prezeroed=\d+ hot_zeroed=\d+ prefaulted=\d+ oom=0 user_ns=\d+ sys_ns=\d+ wall_ns=\d+\|ok freed_pages=\d+ sys_ns=\d+ wall_ns=\d+\|ok\n$/);
    });
  });

  test('when two descriptors are open then each reads only its own results', async () => {
    await withControl(async (_dir, control) => {
      const r = await bash(`exec 3<>${q(control)} 4<>${q(control)}
        echo 'alloc order=1' >&3; echo 'alloc order=2' >&4; echo check >&3
        echo "3: $(cat <&3 | tr '\\n' ' ')"; echo "4: $(cat <&4 | tr '\\n' ' ')"`);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '3: ok handles=1 ok \n4: ok handles=2 \n');
    });
  });

  test('when a user other than root opens control then permission is denied (mode 0600)', async () => {
    assert.equal(process.getuid?.(), 0, 'this test switches to nobody, so it runs as root (as CI does)');
    await withControl(async (_dir, control) => {
      const r = await sh(`cat ${q(control)}`, { asNobody: true });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /Permission denied/);
    });
  });
});
