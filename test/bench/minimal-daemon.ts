import { constants as fsConstants } from 'node:fs';
import Fuse from 'fuse-native';

// The binding's own ceiling for the read benchmark: a fuse-native daemon serving one file,
// /file, a constant string, mounted with the same options kscrubfs uses (direct_io, 0.5 s
// entry and attribute timeouts, allow_other, default_permissions). Its handlers do nothing but
// answer, so whatever it costs per open+read+close is FUSE and fuse-native, not us.
//
//   node dist/test/bench/minimal-daemon.js DIR [--bytes N] [--flush] [--trace]
//
// --bytes  the file's length (default 1120, about a meminfo)
// --flush  also implement flush (a no-op), as kscrubfs did before; without it libfuse answers
//          the first FLUSH with ENOSYS and the kernel sends no more
// --trace  libfuse's debug log on stderr: one "unique: N, opcode: OP" line per kernel request
// SIGUSR2 prints the handler counts as one JSON line on stderr; SIGTERM/SIGINT unmount and exit.

const { S_IFDIR, S_IFREG } = fsConstants;
const FILE = '/file';
const LINE = 'MemTotal:        6291456 kB\n';
const USAGE = 'usage: minimal-daemon DIR [--bytes N] [--flush] [--trace]\n';

function main(): void {
  const [dir, ...flags] = process.argv.slice(2);
  const bytesAt = flags.indexOf('--bytes');
  const size = bytesAt >= 0 ? Number(flags[bytesAt + 1]) : 1120;
  if (!dir || !Number.isSafeInteger(size) || size < 0) {
    process.stderr.write(USAGE);
    process.exit(2);
  }
  const content = Buffer.from(LINE.repeat(Math.ceil(size / LINE.length))).subarray(0, size);
  const counts = { getattr: 0, open: 0, read: 0, flush: 0, release: 0 };
  const times = { atime: new Date(0), mtime: new Date(0), ctime: new Date(0) };
  const ops: Fuse.Operations = {
    getattr(path, cb) {
      counts.getattr++;
      if (path === '/') return cb(0, { mode: S_IFDIR | 0o555, nlink: 2, size: 0, uid: 0, gid: 0, ...times });
      if (path === FILE) return cb(0, { mode: S_IFREG | 0o444, nlink: 1, size: 0, uid: 0, gid: 0, ...times });
      return cb(Fuse.ENOENT);
    },
    open(path, _flags, cb) {
      counts.open++;
      return path === FILE ? cb(0, 1) : cb(Fuse.ENOENT);
    },
    read(_path, _fd, buffer, length, position, cb) {
      counts.read++;
      const end = Math.min(content.length, position + length);
      cb(position >= end ? 0 : content.copy(buffer, 0, position, end));
    },
    release(_path, _fd, cb) {
      counts.release++;
      cb(0);
    },
  };
  if (flags.includes('--flush')) {
    ops.flush = (_path, _fd, cb) => {
      counts.flush++;
      cb(0);
    };
  }
  const fuse = new Fuse(dir, ops, {
    force: true,
    mkdir: true,
    autoUnmount: true,
    allowOther: true,
    defaultPermissions: true,
    fsname: 'kscrubfs-bench-minimal,direct_io',
    entryTimeout: '0.5',
    attrTimeout: '0.5',
    debug: flags.includes('--trace'),
  });
  fuse.mount((err) => {
    if (err) {
      process.stderr.write(`minimal-daemon: cannot mount on ${dir}: ${err.message}\n`);
      process.exit(1);
    }
  });
  process.on('SIGUSR2', () => process.stderr.write(`requests ${JSON.stringify(counts)}\n`));
  const stop = (): void => fuse.unmount(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
