// The daemon's lifecycle, next to fuse/: the scheduler that runs control jobs in slices, the
// live clock, the memory budget, record/replay, and the lock one mount takes.
export { Scheduler, SLICE_MS } from './scheduler';
export { LiveClock, CATCH_UP_MS } from './live-clock';
export { MemoryBudget, defaultMaxMemory } from './budget';
export { RecordingSession, digestFiles, replayEvents } from './record';
export type { Digests, RecordEvent, Recorder, ReplayOutcome } from './record';
export { DaemonError, MOUNT_READY_MS, mountKey, mountLockPath, runtimeDir, withMountLock } from './mount-lock';
export type { DaemonErrorCode } from './mount-lock';
export { pollUntil } from './poll';
export type { PollOptions } from './poll';
