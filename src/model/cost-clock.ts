import type { CostModel } from './cost';
import { type Figure, measured } from './figures';

type ClockName = 'zeroRateGHz' | 'allCoreGHz' | 'boostGHz';

/**
 * The clocks of a CPU that runs every core at one clock (no boost: Itanium 2, P6, K8) or whose
 * clearing rates are stated at the clock it runs at: all three are that clock, so no rate
 * scales (src/model/zero-drivers.ts clearClockGHz).
 */
export function fixedClock(ghz: number, why: string): { value: Pick<CostModel, ClockName>; figures: Record<ClockName, Figure> } {
  const f = measured(why);
  return { value: { zeroRateGHz: ghz, allCoreGHz: ghz, boostGHz: ghz }, figures: { zeroRateGHz: f, allCoreGHz: f, boostGHz: f } };
}
