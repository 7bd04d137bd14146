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
      $N $K pft -g 0.05 -t 1 --scrub off | tail -1 | awk '{ print "pft", NF }'
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
});
