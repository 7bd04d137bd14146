// One base error class, one table of exit statuses (src/cli/errors.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CliError, exitCodeFor } from '../../src/cli/errors';
import { ControlSyntaxError } from '../../src/uapi/grammar';
import { MountError } from '../../src/fuse/mount';
import { createMachine } from '../../src/model';
import { KscrubError, ModelError } from '../../src/uapi';
import { ProcError } from '../../src/uapi';
import { WorkloadError } from '../../src/workload/client';

describe('errors: one base class, one exit-status table', () => {
  it('when each layer raises its error then it is a KscrubError with a KSCRUB_ code and its own name', () => {
    const errors = [
      new ModelError('KSCRUB_NOMEM', 'm'), new MountError('KSCRUB_MOUNT_BUSY', 'b'), new CliError('KSCRUB_USAGE', 'u'),
      new ProcError('EINVAL', 'p'), new WorkloadError('w'), new ControlSyntaxError('s'),
    ];
    for (const e of errors) {
      assert.ok(e instanceof KscrubError, e.name);
      assert.match(e.code, /^KSCRUB_[A-Z_]+$/, e.name);
      assert.equal(e.name, e.constructor.name);
    }
    assert.deepEqual(errors.map((e) => e.name), ['ModelError', 'MountError', 'CliError', 'ProcError', 'WorkloadError', 'ControlSyntaxError']);
    assert.equal((errors[3] as ProcError).errno, 'EINVAL');
    assert.equal(errors[3]!.code, 'KSCRUB_EINVAL');
  });

  it('when the model refuses the machine then the exit status is 2, and 1 for every other refusal or a bug', () => {
    assert.throws(() => createMachine({ mem: '1K' }), (e: unknown) => {
      assert.ok(e instanceof ModelError);
      assert.equal(exitCodeFor(e), 2);
      return true;
    });
    assert.equal(exitCodeFor(new MountError('KSCRUB_MOUNT_FAILED', 'x')), 1);
    assert.equal(exitCodeFor(new CliError('KSCRUB_NOT_MOUNTED', 'x')), 1);
    assert.equal(exitCodeFor(new WorkloadError('x')), 1);
    assert.equal(exitCodeFor(new ProcError('EIO', 'x')), 1);
    assert.equal(exitCodeFor(new Error('a bug')), 1);
    assert.equal(exitCodeFor(new KscrubError('KSCRUB_SOMETHING_NEW', 'x')), 1);
  });
});
