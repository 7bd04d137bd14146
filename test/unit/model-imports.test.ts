// The model's layering, read from its source: no module of src/model reaches back to itself
// through its imports, not even through type-only ones, and the model imports nothing from the
// layers above it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

const SRC = path.resolve(__dirname, '../../../src');
const MODEL = path.join(SRC, 'model');
/** The layers that use the model: it may never import from them. */
const ABOVE = ['cli', 'control', 'daemon', 'fuse', 'procfs', 'workload'];

interface Import {
  readonly from: string;
  /** The specifier as written. */
  readonly spec: string;
  /** Erased by the compiler (import type, or only `type` names): no edge at run time. */
  readonly typeOnly: boolean;
}

/** Every import and re-export of a TypeScript source (single or multi-line). */
function importsOf(source: string): { spec: string; typeOnly: boolean }[] {
  const out: { spec: string; typeOnly: boolean }[] = [];
  // Comments could hold the word import; strip them first.
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const re = /^\s*(import|export)\s+(type\s+)?([^;'"]*?)\s*from\s*['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]/gm;
  for (let m = re.exec(code); m !== null; m = re.exec(code)) {
    if (m[5] !== undefined) {
      out.push({ spec: m[5], typeOnly: false });
      continue;
    }
    const clause = m[3]!.trim();
    const names = /^\{([\s\S]*)\}$/.exec(clause);
    const allTypes = names !== null && names[1]!.split(',').map((n) => n.trim()).filter((n) => n !== '').every((n) => n.startsWith('type '));
    out.push({ spec: m[4]!, typeOnly: m[2] !== undefined || allTypes });
  }
  return out;
}

function modelFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return modelFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

function resolveTs(from: string, spec: string): string {
  const base = path.resolve(path.dirname(from), spec);
  for (const c of [`${base}.ts`, path.join(base, 'index.ts')]) if (fs.existsSync(c)) return c;
  throw new Error(`${path.relative(SRC, from)}: cannot resolve ${spec}`);
}

/** A cycle in the graph (as a list of nodes, first repeated last), or null. */
function findCycle(graph: ReadonlyMap<string, readonly string[]>): string[] | null {
  const state = new Map<string, 1 | 2>(); // 1: on the path, 2: done
  const stack: string[] = [];
  const visit = (n: string): string[] | null => {
    state.set(n, 1);
    stack.push(n);
    for (const next of graph.get(n) ?? []) {
      const s = state.get(next);
      if (s === 1) return [...stack.slice(stack.indexOf(next)), next];
      if (s === undefined) {
        const c = visit(next);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(n, 2);
    return null;
  };
  for (const n of [...graph.keys()].sort()) {
    if (state.has(n)) continue;
    const c = visit(n);
    if (c) return c;
  }
  return null;
}

function modelImports(): Import[] {
  return modelFiles(MODEL).flatMap((f) => importsOf(fs.readFileSync(f, 'utf8')).map((i) => ({ from: f, ...i })));
}

/** src/model's import graph (paths relative to src/); type-only imports too when `types`. */
function modelGraph(types: boolean): { graph: Map<string, string[]>; edges: number } {
  const graph = new Map<string, string[]>();
  for (const f of modelFiles(MODEL)) graph.set(path.relative(SRC, f), []);
  let edges = 0;
  for (const i of modelImports()) {
    if ((i.typeOnly && !types) || !i.spec.startsWith('.')) continue;
    const to = resolveTs(i.from, i.spec);
    if (!to.startsWith(MODEL + path.sep)) continue;
    graph.get(path.relative(SRC, i.from))!.push(path.relative(SRC, to));
    edges++;
  }
  return { graph, edges };
}

describe('model: import graph', () => {
  it('when import statements are parsed then type-only ones are told apart and a cycle is found', () => {
    // The parser and the cycle finder on known input: the checks below rely on both.
    const src = [
      "import { a, type B } from './x';",
      "import type { C } from './y';",
      "import {\n  type D,\n  type E,\n} from './z';",
      "export { f } from './w';",
      "// import { g } from './comment';",
      "import debug from 'debug';",
    ].join('\n');
    assert.deepEqual(importsOf(src), [
      { spec: './x', typeOnly: false },
      { spec: './y', typeOnly: true },
      { spec: './z', typeOnly: true },
      { spec: './w', typeOnly: false },
      { spec: 'debug', typeOnly: false },
    ]);
    assert.deepEqual(findCycle(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']]])), ['a', 'b', 'c', 'a']);
    assert.equal(findCycle(new Map([['a', ['b', 'c']], ['b', ['c']], ['c', []]])), null);
  });

  it('when src/model is read then no module reaches itself through run-time imports', () => {
    const { graph, edges } = modelGraph(false);
    assert.ok(graph.size > 10 && edges > 10, `read ${graph.size} files and ${edges} edges: the walk found the model`);
    assert.equal(findCycle(graph)?.join(' → ') ?? null, null);
  });

  it('when src/model is read then no module reaches itself even through type-only imports', () => {
    // A circle of types is still a circle of knowledge: each part names what it uses of the
    // machine (parts.ts) and of its neighbours (mm-types.ts, HugetlbPools) in a leaf or its own file.
    const { graph, edges } = modelGraph(true);
    assert.ok(edges > modelGraph(false).edges, `${edges} edges with the type-only ones: the walk saw them`);
    assert.equal(findCycle(graph)?.join(' → ') ?? null, null);
  });

  it('when src/model is read then machine.ts, which assembles the parts, is imported only by the model surface and the whole-machine check', () => {
    const { graph } = modelGraph(true);
    const machine = path.join('model', 'machine.ts');
    const importers = [...graph].filter(([, to]) => to.includes(machine)).map(([from]) => from).sort();
    assert.deepEqual(importers, [path.join('model', 'check.ts'), path.join('model', 'index.ts')]);
  });

  it('when src/model is read then it imports nothing from the layers that use it', () => {
    const bad: string[] = [];
    for (const i of modelImports()) {
      if (!i.spec.startsWith('.')) continue;
      const to = path.relative(SRC, resolveTs(i.from, i.spec));
      if (ABOVE.includes(to.split(path.sep)[0]!)) bad.push(`${path.relative(SRC, i.from)} → ${to}`);
    }
    assert.deepEqual(bad, []);
  });

  it('when the fault path is read then each of its modules is under 300 lines (one concern a file, as fault.ts was split)', () => {
    const faultPath = ['anon-fault', 'fault-alloc', 'fault-loop', 'fault-price', 'pte-walk', 'prefault', 'ptlock', 'runner', 'thp', 'touch', 'pagevec', 'spinlock', 'cacheline', 'rwsem', 'membw'];
    const long = faultPath
      .map((name) => ({ name, lines: fs.readFileSync(path.join(MODEL, `${name}.ts`), 'utf8').split('\n').length }))
      .filter((f) => f.lines >= 300);
    assert.deepEqual(long, []);
    assert.ok(!fs.existsSync(path.join(MODEL, 'fault.ts')), 'fault.ts is gone');
  });
});
