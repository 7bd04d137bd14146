// THROWAWAY: experiments before src/procfs lands. Delete before handing back.
import { ProcError, type FileEntry, type ProcTree } from '../../src/procfs/types';
import { mountProcTree } from '../../src/fuse/mount';

let scrubStart = 11;
function snap(render: () => string) {
  return (flags: number) => { const b = Buffer.from(render()); return { read: (o: number, l: number) => b.subarray(o, o + l) }; };
}
const entries: FileEntry[] = [
  { path: '/buddyinfo', mode: 0o444, writable: false, open: snap(() => `Node 0, zone      DMA ${Date.now()} \n`) },
  { path: '/boom', mode: 0o444, writable: false, open: () => ({ read: () => { throw new TypeError('bug'); } }) },
  { path: '/sys/vm/scrub_start', mode: 0o644, writable: true, open: () => {
    const b = Buffer.from(`${scrubStart}\n`);
    return { read: (o, l) => b.subarray(o, o + l), write: (d, o) => { if (o > 0) return d.length; const n = Number(d.toString().trim()); if (!Number.isInteger(n) || n < 0 || n > 11) throw new ProcError('EINVAL', 'bad'); scrubStart = n; return d.length; } };
  } },
];
const tree: ProcTree = {
  files: new Map(entries.map((e) => [e.path, e])),
  dirs: new Map([['/', ['buddyinfo', 'boom', 'sys']], ['/sys', ['vm']], ['/sys/vm', ['scrub_start']]]),
};
const dir = process.argv[2] ?? '/tmp/kscrubfs-scratch';
const et = process.argv[3]; const at = process.argv[4];
mountProcTree(dir, tree, { ...(et !== undefined ? { entryTimeout: et } : {}), ...(at !== undefined ? { attrTimeout: at } : {}) }).then((m) => {
  process.stdout.write(`mounted ${m.dir}\n`);
  const stop = () => { m.unmount().then(() => { process.stderr.write(JSON.stringify(m.counts) + '\n'); process.exit(0); }); };
  process.on('SIGTERM', stop); process.on('SIGINT', stop);
}, (err) => { process.stderr.write(`kscrubfs: ${err.message}\n`); process.exit(1); });
