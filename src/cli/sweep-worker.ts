import { parentPort, workerData } from 'node:worker_threads';
import { MemoryBudget } from '../daemon';
import { loadSpec } from './sweep-spec';
import { runPoint } from './sweep-run';

// A sweep worker thread: loads the spec itself (points are not sent across), then runs the
// points it is told, one at a time, and posts each row back.
// The budget is the process's: its resident size counts every worker's machine.
const { file, maxMemory, band } = workerData as { file: string; maxMemory: number; band: boolean };
const spec = loadSpec(file);
const budget = new MemoryBudget(maxMemory);
parentPort!.on('message', (index: number) => {
  void runPoint(spec, spec.points[index]!, budget, band).then((row) => parentPort!.postMessage(row));
});
