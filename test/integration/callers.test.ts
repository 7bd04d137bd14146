import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pollUntil } from '../../src/daemon/poll';
import { parseVmstat } from '../../src/uapi';
import { kscrubfs, q, REPO_ROOT, run, sh, startDaemon, stopDaemon, waitForMount, withMount, withTempDir } from '../helpers/mount';

// Who sends each request, and a sender's signals (native/fuse-native.c): per-user handle caps,
// and a long command stopped when the client waiting on it is killed or interrupted, on a real
// mount with real clients (sh, python3) as root and as nobody. Nothing here is timed: each test
// waits until the client is inside its read(2) of the results (its /proc/PID/syscall), then
// signals it; a write returns once its commands are queued.

/** x86_64's read(2): a client waiting for a result, its descriptor the first argument. */
const SYS_READ = '0';
/**
 * x86_64's close(2), dup2(2), dup3(2): a client whose close of a descriptor of control waits
 * for the commands its process wrote — a shell's `echo … >&3` closes its dup of fd 3 as it
 * restores stdout. The kernel takes the descriptor out of the table before it flushes, so
 * only the process's other descriptors of control still name the file.
 */
const SYS_CLOSING = new Set(['3', '33', '292']);

/** Does `pid` hold descriptor `fd` (every descriptor, when absent) of a control file? */
function holdsControl(pid: number, fd?: number): boolean {
  const fds = fd === undefined ? readdirSync(`/proc/${pid}/fd`) : [String(fd)];
  return fds.some((f) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${f}`).endsWith('/control');
    } catch {
      return false;
    }
  });
}

/**
 * Wait until `pid` has made `marker` (it does just before its long command), is blocked on
 * the control file waiting for the command (a read of its result, a close), and the daemon at
 * DIR has begun the command (its vmstat counts a fault): a client may still have its request
 * queued in the kernel, where a signal ends it before the daemon ever sees it.
 */
async function waitingOnControl(pid: number, marker: string, dir: string): Promise<void> {
  const r = await pollUntil(() => {
    try {
      if (!existsSync(marker)) return undefined;
      const [nr, fd] = readFileSync(`/proc/${pid}/syscall`, 'utf8').split(' ');
      const waiting = nr === SYS_READ ? holdsControl(pid, Number(fd)) : SYS_CLOSING.has(nr!) && holdsControl(pid);
      return waiting ? true : undefined;
    } catch {
      return 'gone' as const;
    }
  }, { timeoutMs: 30_000 });
  assert.equal(r, true, `pid ${pid} never waited on control in read(2) or close(2) (${r ?? 'timed out'})`);
  const faulting = await pollUntil(() => ((parseVmstat(readFileSync(path.join(dir, 'vmstat'), 'utf8')).get('pgfault') ?? 0) > 0 ? true : undefined), { timeoutMs: 30_000 });
  assert.equal(faulting, true, 'the daemon never began the touch');
}

/** A machine where a touch of most of its memory takes many seconds (its page tables fit the budget). */
const BIG = ['--mem', '128G', '--clock', 'manual'];
const BIG_TOUCH = '100G';
/** Room for all 30 queued 32 GiB touches (960 GiB), so none ends early on OOM and the queue stays long. */
const QUEUE = ['--mem', '1T', '--clock', 'manual'];

/** sh CONTROL MARKER: make a process, map BIG_TOUCH, make MARKER, then touch it all in one write; prints each result. */
const TOUCH_SCRIPT = [
  'exec 3<>"$1"',
  'echo "mm new keep" >&3; read -r r <&3; echo "$r"',
  `echo "mmap mm=1 size=${BIG_TOUCH}" >&3; read -r r <&3; echo "$r"`,
  'a=${r#*addr=}; a=${a%% *}',
  ': > "$2"',
  `echo "touch mm=1 addr=$a size=${BIG_TOUCH}" >&3`,
  'read -r r <&3; echo "$r"',
].join('\n');

/** Big enough that, one fault a page, it is far from done when the test has killed its client. */
const KILLED_TOUCH = '512G';

/**
 * python3 CONTROL MARKER SIZE (sleep|crash|exit): with prefault off (one fault a page), make a
 * process and map SIZE, write a touch of it (the write returns once queued), make MARKER, then,
 * without reading or closing: sleep (until killed); or, once the daemon has faulted a page of
 * the touch, die of a signal sent to its own thread, as a crash (SIGSEGV, abort) does; or exit 0.
 */
const WRITE_THEN_SCRIPT = String.raw`
import os, signal, sys, threading, time
ctl, marker, size, then = sys.argv[1:5]
def faults():
    with open(os.path.join(os.path.dirname(ctl), 'vmstat')) as f:
        return int([l for l in f if l.startswith('pgfault ')][0].split()[1])
with open(os.path.join(os.path.dirname(ctl), 'sys/vm/max_prealloc_order'), 'w') as f: f.write('0')
fd = os.open(ctl, os.O_RDWR)
def cmd(line):
    os.write(fd, (line + '\n').encode())
    return os.read(fd, 4096).decode().strip()
cmd('mm new keep')
addr = cmd('mmap mm=1 size=%s' % size).split('addr=')[1].split()[0]
os.write(fd, ('touch mm=1 addr=%s size=%s\n' % (addr, size)).encode())
open(marker, 'w').close()
if then == 'sleep': time.sleep(3600)
if then == 'crash':
    while faults() == 0: time.sleep(0.01)
    # SIGKILL, not SIGSEGV: no core dump to wait for. Sent to the thread (tgkill), nothing of it
    # stays pending in the exit, so the kernel interrupts no request of the exit's close.
    signal.pthread_kill(threading.get_ident(), signal.SIGKILL)
os._exit(0)
`;

/** Wait until MARKER exists (the touch is queued) and the daemon at DIR has faulted a page of it. */
async function touchBegun(marker: string, dir: string): Promise<void> {
  const faulting = await pollUntil(() => (existsSync(marker) && (parseVmstat(readFileSync(path.join(dir, 'vmstat'), 'utf8')).get('pgfault') ?? 0) > 0 ? true : undefined), { timeoutMs: 30_000 });
  assert.equal(faulting, true, 'the daemon never began the touch');
}

/**
 * After a client of a KILLED_TOUCH died (reaped: its exit's close was answered), the machine
 * checks and the touch did a small part of its pages: the exit did not wait for it.
 */
async function assertTouchStopped(dir: string): Promise<void> {
  const { s, line } = await checkedStats(dir);
  const pages = (512 * 2 ** 30) / s.get('page_size')!;
  assert.ok(s.get('pgfault')! > 0 && s.get('pgfault')! < pages / 2, `the touch ran on after its client died: ${line}`);
}

/** `check` answers ok on DIR's machine; its `stats` line, parsed. */
async function checkedStats(dir: string): Promise<{ s: Map<string, number>; line: string }> {
  const out = await sh(`exec 3<>${q(path.join(dir, 'control'))}; echo check >&3; read -r c <&3; echo "$c"; echo stats >&3; read -r s <&3; echo "$s"`);
  const [check, line] = out.stdout.trim().split('\n');
  assert.equal(check, 'ok', out.stdout);
  return { s: statsOf(line!), line: line! };
}

/** The record REC has the touch's write and an interrupt of it. */
function assertRecordedInterrupt(rec: string): void {
  const events = records(rec);
  const touch = events.find((e) => e['ev'] === 'write' && String(e['data']).startsWith('touch'));
  const interrupt = events.find((e) => e['ev'] === 'interrupt');
  assert.ok(touch && interrupt, 'the record has the touch and its interrupt');
  assert.equal(interrupt['of'], touch['n']);
}

function records(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

function statsOf(line: string): Map<string, number> {
  return new Map(line.replace(/^ok /, '').split(' ').map((kv) => {
    const [k, v] = kv.split('=');
    return [k!, Number(v)];
  }));
}

describe('callers and their signals', () => {
  it('when the daemon mounts then it runs the FUSE binding built from native/ (the one that names callers)', async () => {
    await withMount(['--preset', 'x86_64', '--clock', 'manual'], async (_dir, daemon) => {
      const maps = readFileSync(`/proc/${daemon.pid}/maps`, 'utf8');
      assert.ok(maps.includes(path.join(REPO_ROOT, 'native/build/Release/fuse.node')), 'the daemon did not load native/build/Release/fuse.node');
      assert.doesNotMatch(daemon.stderr(), /prebuild/);
    });
  });

  it('when nobody opens past --max-handles-per-user then the next opens fail EMFILE while root still opens, and closing frees them', { timeout: 60_000 }, async () => {
    assert.equal(process.getuid?.(), 0, 'this test switches to nobody, so it runs as root (as CI does)');
    await withMount(['--preset', 'x86_64', '--clock', 'manual', '--max-handles-per-user', '5'], async (dir) => {
      const opens = `const fs = require('fs'); const out = [];
        for (let i = 0; i < 7; i++) { try { fs.openSync(${JSON.stringify(path.join(dir, 'meminfo'))}, 'r'); out.push('ok'); } catch (e) { out.push(e.code); } }
        console.log(out.join(' '));`;
      const nobody = await run(process.execPath, ['-e', opens], { asNobody: true });
      assert.equal(nobody.stdout.trim(), 'ok ok ok ok ok EMFILE EMFILE', nobody.stderr);
      // Its process has exited: its handles were released, so nobody may open 5 again.
      const again = await run(process.execPath, ['-e', opens], { asNobody: true });
      assert.equal(again.stdout.trim(), 'ok ok ok ok ok EMFILE EMFILE', again.stderr);
      const root = await run(process.execPath, ['-e', opens]);
      assert.equal(root.stdout.trim(), 'ok ok ok ok ok ok ok', root.stderr);
    });
  });

  it('when a bad --max-handles-per-user is given then mount refuses it and names the option', async () => {
    for (const bad of ['0', '-3', 'many', String(2 ** 18 + 1)]) {
      const r = await kscrubfs(['mount', '/nonexistent-kscrubfs', '--max-handles-per-user', bad]);
      assert.notEqual(r.code, 0, bad);
      assert.match(r.stderr, /max-handles-per-user/, bad);
    }
  });

  it('when the client waiting on a long touch is killed then the touch ends at the next step, the machine checks, the record marks it and replays to the same bytes', { timeout: 120_000 }, async () => {
    await withTempDir(async (tmp, dir) => {
      const rec = path.join(tmp, 'rec.jsonl');
      const daemon = startDaemon(dir, [...BIG, '--record', rec]);
      try {
        await waitForMount(dir, daemon);
        const marker = path.join(tmp, 'touching');
        const client = run('sh', ['-c', TOUCH_SCRIPT, 'touch', path.join(dir, 'control'), marker], { timeoutMs: 60_000 });
        const pid = await shPid(dir);
        await waitingOnControl(pid, marker, dir);
        process.kill(pid, 'SIGKILL');
        const r = await client;
        assert.equal(r.signal, 'SIGKILL');
        // The machine is whole, and the touch stopped short of the range.
        const out = await sh(`exec 3<>${q(path.join(dir, 'control'))}; echo stats >&3; read -r s <&3; echo "$s"; echo check >&3; read -r c <&3; echo "$c"`);
        const [stats, check] = out.stdout.trim().split('\n');
        assert.equal(check, 'ok', out.stdout);
        const s = statsOf(stats!);
        assert.ok(s.get('pgfault')! > 0, stats);
        const pages = (100 * 2 ** 30) / s.get('page_size')!;
        assert.ok(s.get('pgfault_hot_zeroed')! + s.get('pgfault_prezeroed')! < pages, `the touch ran to its end: ${stats}`);
      } finally {
        await stopDaemon(daemon, dir);
      }
      assertRecordedInterrupt(rec);
      const replay = await kscrubfs(['replay', rec], { timeoutMs: 60_000 });
      assert.equal(replay.code, 0, replay.stderr);
      assert.match(replay.stdout, /files identical/);
    });
  });

  it('when a python client is interrupted (SIGINT) waiting on a touch then its read is interrupted, the touch stops and its result line says what it did, and close fails EINTR', { timeout: 120_000 }, async () => {
    await withMount(BIG, async (dir) => {
      const marker = path.join(path.dirname(dir), 'touching');
      const script = [
        'import os, sys',
        'fd = os.open(sys.argv[1], os.O_RDWR)',
        'def cmd(line):',
        '    os.write(fd, (line + "\\n").encode())',
        '    return os.read(fd, 4096).decode().strip()',
        'print(cmd("mm new keep"))',
        'r = cmd("mmap mm=1 size=' + BIG_TOUCH + '")',
        'print(r)',
        'addr = r.split("addr=")[1].split()[0]',
        'open(sys.argv[2], "w").close()',
        'os.write(fd, ("touch mm=1 addr=%s size=' + BIG_TOUCH + '\\n" % addr).encode())',
        'try:',
        '    print(os.read(fd, 4096).decode().strip())',
        'except KeyboardInterrupt:',
        '    print("interrupted")',
        'print(os.read(fd, 4096).decode().strip())',
        'try:',
        '    os.close(fd)',
        '    print("closed")',
        'except OSError as e:',
        '    print("close: " + os.strerror(e.errno))',
      ].join('\n');
      const client = run('python3', ['-c', script, path.join(dir, 'control'), marker], { timeoutMs: 60_000 });
      const pid = await childNamed('python3', dir);
      await waitingOnControl(pid, marker, dir);
      process.kill(pid, 'SIGINT');
      const r = await client;
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines[2], 'interrupted', r.stdout);
      assert.match(lines[3]!, /^err touch: interrupted by a signal to its writer; what it did stays: pages=\d+ faults=[1-9]\d* /, r.stdout);
      // What it reports is what the machine shows.
      const pages = Number(/ pages=(\d+)/.exec(lines[3]!)![1]);
      assert.ok(pages > 0 && pages < (100 * 2 ** 30) / 16384, lines[3]);
      assert.equal(lines[4], 'close: Interrupted system call', 'close reports how its command ended');
    });
  });

  it('when 30 clients queue a 32 GiB touch each then a stats on another descriptor is answered before their results, and killing them all stops every touch', { timeout: 180_000 }, async () => {
    await withMount(QUEUE, async (dir) => {
      // One process, 30 descriptors: each makes its process and mapping, then writes its touch
      // (the write returns once queued) and a thread per descriptor waits in read(2) for the
      // result. With all 30 queued, a 31st descriptor writes stats and reads its line; then
      // the process prints what it saw and kills itself, all 30 readers still waiting.
      const script = String.raw`
import json, os, sys, threading
ctl, n, size = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(os.path.join(os.path.dirname(ctl), 'sys/vm/max_prealloc_order'), 'w') as f: f.write('0')
def cmd(fd, line):
    os.write(fd, (line + '\n').encode())
    return os.read(fd, 4096).decode().strip()
fds = []
for i in range(n):
    fd = os.open(ctl, os.O_RDWR)
    mm = cmd(fd, 'mm new').split('mm=')[1]
    addr = cmd(fd, 'mmap mm=%s size=%s' % (mm, size)).split('addr=')[1].split()[0]
    fds.append((fd, mm, addr))
done = []
lock = threading.Lock()
def wait(fd):
    line = os.read(fd, 4096).decode().strip()
    with lock: done.append(line)
for fd, mm, addr in fds:
    assert os.write(fd, ('touch mm=%s addr=%s size=%s\n' % (mm, addr, size)).encode()) > 0
for fd, _, _ in fds:
    threading.Thread(target=wait, args=(fd,), daemon=True).start()
s = os.open(ctl, os.O_RDWR)
stats = cmd(s, 'stats')
with lock: before = len(done)
print(json.dumps({'stats': stats, 'done_before_stats': before}), flush=True)
os.kill(os.getpid(), 9)
`;
      const client = await run('python3', ['-c', script, path.join(dir, 'control'), '30', '32G'], { timeoutMs: 150_000 });
      assert.equal(client.signal, 'SIGKILL', client.stderr);
      const seen = JSON.parse(client.stdout) as { stats: string; done_before_stats: number };
      const s = statsOf(seen.stats);
      const pages = (32 * 2 ** 30) / s.get('page_size')!;
      // Every touch was queued before stats was written, and stats came back while the queue
      // ahead of it had hardly begun: the touches run one after another, each thousands of
      // slices, and stats is answered between two of them. (How many touches ended before it
      // depends on the host's speed, so the test asserts the queue, not a count of one or two.)
      assert.equal(s.get('mms'), 30, seen.stats);
      assert.ok(seen.done_before_stats < 29, `${seen.done_before_stats} touches answered before the stats`);
      assert.ok(s.get('pgfault')! < 29 * pages, `stats waited for touches: ${seen.stats}`);
      // The process is gone, so every touch was stopped (or never started): its 30 closes
      // waited for them, and the queue did not run on: most of its touches never faulted a page.
      const after = await sh(`exec 3<>${q(path.join(dir, 'control'))}; echo check >&3; read -r c <&3; echo "$c"; echo stats >&3; read -r s <&3; echo "$s"`);
      const [check, line] = after.stdout.trim().split('\n');
      assert.equal(check, 'ok', after.stdout);
      assert.ok(statsOf(line!).get('pgfault')! < 29 * pages, `the touches ran on after their client died: ${line}`);
    });
  });

  it('when a client is SIGKILLed between its write and its read then its exit does not wait for the touch: it stops at the next step', { timeout: 120_000 }, async () => {
    await withMount(QUEUE, async (dir) => {
      const marker = path.join(path.dirname(dir), 'touching');
      const client = run('python3', ['-c', WRITE_THEN_SCRIPT, path.join(dir, 'control'), marker, KILLED_TOUCH, 'sleep'], { timeoutMs: 60_000 });
      const pid = await childNamed('python3', dir);
      await touchBegun(marker, dir);
      // It sleeps, waiting on nothing: the kernel has no request of it to interrupt until its exit closes control.
      assert.doesNotMatch(readFileSync(`/proc/${pid}/syscall`, 'utf8'), /^(0|3|33|292) /, 'the client waits on control');
      process.kill(pid, 'SIGKILL');
      const r = await client;
      assert.equal(r.signal, 'SIGKILL', r.stderr);
      await assertTouchStopped(dir);
    });
  });

  it('when a client dies of a signal to its own thread (a crash) between its write and its read then its exit does not wait: the touch stops, the record marks it', { timeout: 120_000 }, async () => {
    await withTempDir(async (tmp, dir) => {
      const rec = path.join(tmp, 'rec.jsonl');
      const daemon = startDaemon(dir, [...QUEUE, '--record', rec]);
      try {
        await waitForMount(dir, daemon);
        const marker = path.join(tmp, 'touching');
        const r = await run('python3', ['-c', WRITE_THEN_SCRIPT, path.join(dir, 'control'), marker, KILLED_TOUCH, 'crash'], { timeoutMs: 60_000 });
        assert.equal(r.signal, 'SIGKILL', r.stderr);
        await assertTouchStopped(dir);
      } finally {
        await stopDaemon(daemon, dir);
      }
      assertRecordedInterrupt(rec);
    });
  });

  it('when a client writes a touch and exits normally without reading then its exit waits and the touch runs to its end', { timeout: 120_000 }, async () => {
    await withMount(['--mem', '16G', '--clock', 'manual'], async (dir) => {
      const marker = path.join(path.dirname(dir), 'touching');
      const r = await run('python3', ['-c', WRITE_THEN_SCRIPT, path.join(dir, 'control'), marker, '4G', 'exit'], { timeoutMs: 60_000 });
      assert.equal(r.code, 0, r.stderr);
      const { s, line } = await checkedStats(dir);
      // Prefault is off, so each page of the 4 GiB is one fault.
      const pages = (4 * 2 ** 30) / s.get('page_size')!;
      assert.equal(s.get('pgfault'), pages, `the touch did not run to its end: ${line}`);
    });
  });

  it('when the daemon is stopped while a touch runs then the record replays to the same bytes (the touch stopped at the same step)', { timeout: 120_000 }, async () => {
    await withTempDir(async (tmp, dir) => {
      const rec = path.join(tmp, 'rec.jsonl');
      const daemon = startDaemon(dir, [...BIG, '--record', rec]);
      let client: ReturnType<typeof run> | undefined;
      try {
        await waitForMount(dir, daemon);
        const marker = path.join(tmp, 'touching');
        client = run('sh', ['-c', TOUCH_SCRIPT, 'touch', path.join(dir, 'control'), marker], { timeoutMs: 60_000 });
        await waitingOnControl(await shPid(dir), marker, dir);
      } finally {
        await stopDaemon(daemon, dir);
      }
      await client;
      const stopped = records(rec).find((e) => e['ev'] === 'stopped');
      assert.ok(stopped && Number.isSafeInteger(stopped['steps']), 'the record says at which step the session stopped');
      const replay = await kscrubfs(['replay', rec], { timeoutMs: 60_000 });
      assert.equal(replay.code, 0, replay.stderr);
      assert.match(replay.stdout, /files identical/);
    });
  });
});

/** The pid of the `sh -c TOUCH_SCRIPT` writing to DIR/control. */
function shPid(dir: string): Promise<number> {
  return childNamed('sh', dir);
}

/** The pid of a process named `comm` whose command line names DIR (bounded polling). */
async function childNamed(comm: string, dir: string): Promise<number> {
  const found = await pollUntil(() => {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== comm) continue;
        if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir)) return Number(entry);
      } catch {
        // gone meanwhile
      }
    }
    return undefined;
  }, { timeoutMs: 30_000 });
  assert.ok(found !== undefined, `no ${comm} writing to ${dir}`);
  return found;
}
