import { parentPort, workerData } from 'node:worker_threads';
import { loadSpec } from './sweep-spec';
import { runPoint } from './sweep-run';

// A sweep worker thread: loads the spec itself (points are not sent across), then runs the
// points it is told, one at a time, and posts each row back.
const spec = loadSpec((workerData as { file: string }).file);
parentPort!.on('message', (index: number) => {
  void runPoint(spec, spec.points[index]!).then((row) => parentPort!.postMessage(row));
});
