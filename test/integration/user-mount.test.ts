import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliForNobody, q, run } from '../helpers/mount';

// kscrubfs mount as an ordinary user: libfuse 2 mounts through setuid fusermount, no root.
// A desktop's /dev/fuse is 0666; a container's often 0600 (this one's is). The script runs in a
// mount namespace of its own where a 0666 node of the same device (10, 229) is bound over
// /dev/fuse, as on a desktop; everything else (fusermount, /etc/fuse.conf, the kernel's FUSE)
// is the host's. Mounts made there vanish with the namespace, so none can be left behind.

const NOBODY = 'setpriv --reuid=nobody --regid=nogroup --clear-groups';

describe('mount as an ordinary user', () => {
  let tmp = '';
  before(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'kscrubfs-user-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  /** Run `body` (sh) as root in a private mount namespace whose /dev/fuse nobody may open. */
  async function inUserNamespace(body: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const script = [
      'set -u',
      `dev=${q(tmp)}/fuse-$$ && mknod "$dev" c 10 229 && chmod 666 "$dev" && mount --bind "$dev" /dev/fuse || exit 99`,
      `work=$(mktemp -d) && chmod 777 "$work" || exit 99`,
      `K="node ${cliForNobody()}"`, // a mkdtemp path: no spaces
      body,
    ].join('\n');
    return run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { timeoutMs: 120_000 });
  }

  it('when nobody mounts without root then the mount is theirs: KSCRUBFS_MOUNT is the default, they read, write a sysctl, run pft and unmount', async () => {
    const r = await inUserNamespace(`
      export KSCRUBFS_MOUNT="$work/m"
      N="${NOBODY}"
      $N $K mount --background --preset x86_64 --clock manual >/dev/null || exit 1
      echo "owner $($N stat -c '%U %a' "$work/m/meminfo" "$work/m/sys/vm/scrub_start" | tr '\\n' ' ')"
      echo "opts $(awk -v m="$work/m" '$2 == m { print $4 }' /proc/mounts)"
      $N sh -c 'echo 5 > "$KSCRUBFS_MOUNT/sys/vm/scrub_start"' && echo "scrub_start $($N cat "$work/m/sys/vm/scrub_start")"
      $N head -1 "$work/m/meminfo"
      $N $K pft -g 0.05 -t 1 --scrub off | awk '/^ *[0-9]/ { n = NF } END { print "pft", n }'
      cat "$work/m/meminfo" >/dev/null 2>&1 && echo "root reads" || echo "root refused"
      $N $K umount >/dev/null; echo "umount $?"
      awk -v m="$work/m" '$2 == m' /proc/mounts | wc -l | sed 's/^/left /'
    `);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.deepEqual(lines.filter((l) => !l.startsWith('opts ') && !l.startsWith('MemTotal')), [
      'owner nobody 444 nobody 644 ',
      'scrub_start 5',
      'pft 8',
      // Without allow_other the kernel keeps every other user out of a user's FUSE mount, root too.
      'root refused',
      `umount 0`,
      'left 0',
    ], r.stderr);
    assert.match(r.stdout, /^MemTotal: +\d+ kB$/m);
    assert.doesNotMatch(lines.find((l) => l.startsWith('opts '))!, /allow_other/);
  });

  it('when nobody asks for --allow-other without user_allow_other then fusermount\'s own refusal is shown and nothing is mounted', async () => {
    const r = await inUserNamespace(`
      grep -q '^user_allow_other' /etc/fuse.conf && exit 98
      ${NOBODY} $K mount --allow-other "$work/m"; echo "exit $?"
      awk -v m="$work/m" '$2 == m' /proc/mounts | wc -l | sed 's/^/left /'
    `);
    assert.equal(r.code, 0, `exit 98: /etc/fuse.conf allows allow_other here\n${r.stderr}`);
    assert.equal(r.stdout, 'exit 1\nleft 0\n');
    assert.match(r.stderr, /^kscrubfs: cannot mount on \/tmp\/\S+\/m: fusermount: option allow_other only allowed if 'user_allow_other' is set in \/etc\/fuse\.conf\n$/);
  });

  it('when nobody kills their own writer mid-touch on their own mount then the write ends, the machine checks, and the record replays to the same bytes', async () => {
    // The client's wait: until it has made the marker and sits in write(2) (/proc/PID/syscall
    // starts "1 ", x86_64's write) — bounded, never a fixed sleep.
    const r = await inUserNamespace(`
      N="${NOBODY}"
      $N $K mount --background --mem 128G --clock manual --record "$work/rec.jsonl" "$work/m" >/dev/null || exit 1
      $N sh -c 'exec 3<>"$1/m/control"
        echo "mm new keep" >&3; read -r r <&3
        echo "mmap mm=1 size=100G" >&3; read -r r <&3; a=\${r#*addr=}; a=\${a%% *}
        : > "$1/touching"
        echo "touch mm=1 addr=$a size=100G" >&3; read -r r <&3; echo "completed $r"' sh "$work" &
      p=$!
      i=0
      until [ -e "$work/touching" ] && [ "$(cut -d' ' -f1 /proc/$p/syscall 2>/dev/null)" = 1 ]; do
        i=$((i + 1)); [ $i -gt 3000 ] && { echo "never in write"; break; }; sleep 0.01
      done
      $N kill -KILL $p; wait $p; echo "client $?"
      $N sh -c 'exec 3<>"$1/control"; echo check >&3; read -r r <&3; echo "check $r"' sh "$work/m"
      $N $K umount "$work/m" >/dev/null; echo "umount $?"
      grep -c '"ev":"interrupt"' "$work/rec.jsonl" | sed 's/^/interrupts /'
      $N $K replay "$work/rec.jsonl" | grep -o 'files identical'
    `);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [
      'client 137', 'check ok', 'umount 0', 'interrupts 1', 'files identical',
    ], r.stdout + r.stderr);
  });
});
