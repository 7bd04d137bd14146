// Types for fuse-native 2.2.6, which ships none. Only what kscrubfs uses is declared, and
// each callback is typed as index.js actually calls it (read from the package, not its README).
declare module 'fuse-native' {
  namespace Fuse {
    /** 0 for success or a negative errno (Fuse.ENOENT …). */
    type Code = number;
    type DoneCallback = (code: Code) => void;

    /** What getattr returns; fuse-native fills missing fields with 0 (nlink with 1). */
    interface Stat {
      mode: number;
      uid?: number;
      gid?: number;
      size?: number;
      nlink?: number;
      ino?: number;
      dev?: number;
      rdev?: number;
      blksize?: number;
      blocks?: number;
      /** A Date or milliseconds since the epoch; fuse-native passes milliseconds to the kernel. */
      atime?: Date | number;
      mtime?: Date | number;
      ctime?: Date | number;
    }

    interface StatFs {
      bsize: number;
      frsize: number;
      blocks: number;
      bfree: number;
      bavail: number;
      files: number;
      ffree: number;
      favail: number;
      fsid: number;
      flag: number;
      namemax: number;
    }

    /**
     * Handlers. Every callback must be called exactly once; one that never fires is answered
     * by fuse-native with ETIMEDOUT after `timeout` ms, and a synchronous throw kills the process.
     */
    interface Operations {
      init?(cb: DoneCallback): void;
      getattr?(path: string, cb: (code: Code, stat?: Stat) => void): void;
      readdir?(path: string, cb: (code: Code, names?: readonly string[], stats?: readonly Stat[]) => void): void;
      /** `fd` returned here comes back to read/write/release; 0 means "no handle". */
      open?(path: string, flags: number, cb: (code: Code, fd?: number) => void): void;
      /** fuse-native passes the directory handle where it names `flags`. */
      opendir?(path: string, flags: number, cb: (code: Code, fd?: number) => void): void;
      /** Copy into `buffer`, then call back with the byte count (≥ 0) or a negative errno. */
      read?(path: string, fd: number, buffer: Buffer, length: number, position: number, cb: (result: number) => void): void;
      /** `buffer` is only valid until the callback; call back with bytes written or a negative errno. */
      write?(path: string, fd: number, buffer: Buffer, length: number, position: number, cb: (result: number) => void): void;
      truncate?(path: string, size: number, cb: DoneCallback): void;
      ftruncate?(path: string, fd: number, size: number, cb: DoneCallback): void;
      flush?(path: string, fd: number, cb: DoneCallback): void;
      release?(path: string, fd: number, cb: DoneCallback): void;
      releasedir?(path: string, fd: number, cb: DoneCallback): void;
      statfs?(path: string, cb: (code: Code, statfs?: StatFs) => void): void;
      create?(path: string, mode: number, cb: (code: Code, fd?: number) => void): void;
      mknod?(path: string, mode: number, dev: number, cb: DoneCallback): void;
      mkdir?(path: string, mode: number, cb: DoneCallback): void;
      /** `target` is the link's text, `path` the new name. */
      symlink?(target: string, path: string, cb: DoneCallback): void;
      link?(target: string, path: string, cb: DoneCallback): void;
      rename?(src: string, dest: string, cb: DoneCallback): void;
      unlink?(path: string, cb: DoneCallback): void;
      rmdir?(path: string, cb: DoneCallback): void;
      chmod?(path: string, mode: number, cb: DoneCallback): void;
      chown?(path: string, uid: number, gid: number, cb: DoneCallback): void;
      utimens?(path: string, atime: unknown, mtime: unknown, cb: DoneCallback): void;
    }

    interface Options {
      /**
       * ms before an unanswered op is failed with ETIMEDOUT (default 15000); false disables;
       * per op: { default: 15000, write: false }.
       */
      timeout?: number | false | { readonly default?: number; readonly [op: string]: number | false | undefined };
      /** Clear a dead mount ("Transport endpoint is not connected") before mounting. */
      force?: boolean;
      /** Create the mount point if missing. */
      mkdir?: boolean;
      debug?: boolean;
      allowOther?: boolean;
      allowRoot?: boolean;
      autoUnmount?: boolean;
      defaultPermissions?: boolean;
      /** Passed verbatim after `fsname=`: commas smuggle extra -o options (direct_io). */
      fsname?: string;
      subtype?: string;
      kernelCache?: boolean;
      autoCache?: boolean;
      maxRead?: number;
      /** Seconds. A numeric 0 is dropped by fuse-native (falsy test): pass '0'. */
      entryTimeout?: number | string;
      attrTimeout?: number | string;
      acAttrTimeout?: number | string;
      uid?: number;
      gid?: number;
      umask?: number;
    }
  }

  class Fuse {
    constructor(mnt: string, ops: Fuse.Operations, opts?: Fuse.Options);
    readonly mnt: string;
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    /** Runs `fusermount -uz mnt`. */
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
    static isConfigured(cb: (err: Error | null, configured: boolean) => void): void;

    // Negative Linux errno values, as index.js defines them.
    static readonly EPERM: -1;
    static readonly ENOENT: -2;
    static readonly EINTR: -4;
    static readonly EAGAIN: -11;
    static readonly EIO: -5;
    static readonly ENXIO: -6;
    static readonly EBADF: -9;
    static readonly ENOMEM: -12;
    static readonly EACCES: -13;
    static readonly EBUSY: -16;
    static readonly ENOTDIR: -20;
    static readonly EISDIR: -21;
    static readonly EINVAL: -22;
    static readonly ENFILE: -23;
    static readonly EMFILE: -24;
    static readonly ENOSYS: -38;
    static readonly ENOTCONN: -107;
    static readonly ETIMEDOUT: -110;
  }

  export = Fuse;
}
