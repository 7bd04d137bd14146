import type { CostModel } from './cost';
import { type Figure, measured } from './figures';

/**
 * The block-transfer-engine figures of a machine that has none (every preset but altix):
 * the `bte` driver is never registered there, so they are never priced; one copy keeps the
 * presets' CostModels complete.
 */
export const NO_BTE: Pick<CostModel, 'bteBytesPerNs' | 'bteSetupNs' | 'bteMinBytes' | 'bteMaxBytes'> = {
  bteBytesPerNs: 0.5,
  bteSetupNs: 2_000,
  bteMinBytes: 60_000,
  bteMaxBytes: 2 ** 30,
};

/** Their provenance: unused figures, and said so. */
const UNUSED: Figure = measured('unused: this machine has no block-transfer engine (the bte zero driver is never registered)');
export const NO_BTE_FIGURES: Record<keyof typeof NO_BTE, Figure> = {
  bteBytesPerNs: UNUSED, bteSetupNs: UNUSED, bteMinBytes: UNUSED, bteMaxBytes: UNUSED,
};
