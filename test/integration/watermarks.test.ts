import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sh, withMount } from '../helpers/mount';

// A modern kernel's watermark sysctls through a real mount, driven by cat, echo, stat and awk.
// The tiny 6.18 machine of test/unit/model-watermarks.test.ts: DMA32 min/low/high 2577/3221/3865.
const ARGS = ['--preset', 'epyc', '--nodes', '1', '--cpus', '2', '--mem', '256M', '--clock', 'manual'];

describe('watermark sysctls on a mount', () => {
  test('when echo writes the watermark sysctls then zoneinfo follows, and a bad write is EINVAL with the value kept', async () => {
    await withMount(ARGS, async (dir) => {
      const script = `
        set -e
        cd ${dir}
        wm() { awk '/zone +DMA32/ { z = 1 } z && /^ +(min|low|high) / { printf "%s ", $2 } z && /^ +high / { exit }' zoneinfo; }
        echo "read $(cat sys/vm/min_free_kbytes sys/vm/watermark_scale_factor sys/vm/watermark_boost_factor | tr '\\n' ' ')"
        echo "modes $(stat -c %a sys/vm/min_free_kbytes sys/vm/watermark_scale_factor sys/vm/watermark_boost_factor | tr '\\n' ' ')"
        echo "boot $(wm)"
        for bad in 0 3001 abc -5 ''; do
          if printf '%s\\n' "$bad" > sys/vm/watermark_scale_factor 2>/dev/null; then echo "scale $bad accepted"; else echo "scale $bad refused $(cat sys/vm/watermark_scale_factor)"; fi
        done
        if echo -1 > sys/vm/min_free_kbytes 2>/dev/null; then echo "min -1 accepted"; else echo "min -1 refused $(cat sys/vm/min_free_kbytes)"; fi
        if echo 2147483648 > sys/vm/watermark_boost_factor 2>/dev/null; then echo "boost big accepted"; else echo "boost big refused $(cat sys/vm/watermark_boost_factor)"; fi
        echo "kept $(wm)"
        echo 1000 > sys/vm/watermark_scale_factor
        echo "scaled $(wm)"
        echo 1024 > sys/vm/min_free_kbytes
        echo "lowered $(cat sys/vm/min_free_kbytes) $(wm)"
        echo 0 > sys/vm/watermark_boost_factor
        echo "boost $(cat sys/vm/watermark_boost_factor)"`;
      const r = await sh(script);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split('\n').map((l) => l.trim()), [
        'read 11120 10 15000',
        'modes 644 644 644',
        'boot 2577 3221 3865',
        'scale 0 refused 10',
        'scale 3001 refused 10',
        'scale abc refused 10',
        'scale -5 refused 10',
        'scale  refused 10',
        'min -1 refused 11120',
        'boost big refused 15000',
        'kept 2577 3221 3865',
        'scaled 2577 7799 13021',
        'lowered 1024 237 5459 10681',
        'boost 0',
      ]);
    });
  });

  test('when a 2.6.11 preset is mounted then it has no watermark sysctls', async () => {
    await withMount(['--preset', 'x86_64', '--mem', '256M', '--clock', 'manual'], async (dir) => {
      const r = await sh(`cd ${dir} && ls sys/vm`);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!/min_free_kbytes|watermark_/.test(r.stdout), r.stdout);
    });
  });
});
